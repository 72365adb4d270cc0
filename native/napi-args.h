// Argument checking shared by the addon's source files: every kernel validates its arguments with these, before
// any write, and throws a JS TypeError (wrong type) or RangeError (bad value) saying which function and argument.
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

namespace edgefed {

inline bool throw_msg(napi_env env, bool type_error, const char* fmt, ...) {
  char buf[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (type_error) napi_throw_type_error(env, nullptr, buf);
  else napi_throw_range_error(env, nullptr, buf);
  return false;
}

inline const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
  }
  return "TypedArray";
}

// Same wording as describe() in kernels-js.ts.
inline const char* describe(napi_env env, napi_value v) {
  bool flag = false;
  if (napi_is_typedarray(env, v, &flag) == napi_ok && flag) {
    napi_typedarray_type t;
    if (napi_get_typedarray_info(env, v, &t, nullptr, nullptr, nullptr, nullptr) == napi_ok) return typed_array_name(t);
    return "TypedArray";
  }
  if (napi_is_dataview(env, v, &flag) == napi_ok && flag) return "DataView";
  if (napi_is_array(env, v, &flag) == napi_ok && flag) return "Array";
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok) return "unknown";
  switch (vt) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "object";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

struct F32 {
  float* data;
  int64_t len;
};

struct I32 {
  int32_t* data;
  int64_t len;
};

inline bool typed(napi_env env, napi_value v, napi_typedarray_type want, const char* fn, const char* name,
           void** data, int64_t* len) {
  bool is_ta = false;
  napi_typedarray_type t;
  size_t n = 0;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &t, &n, data, nullptr, nullptr) != napi_ok || t != want) {
    return throw_msg(env, true, "%s: %s must be %s, got %s", fn, name,
                     want == napi_int32_array ? "an Int32Array" : "a Float32Array", describe(env, v));
  }
  // Node gives data already offset to the view's first element; a detached buffer has length 0.
  *len = static_cast<int64_t>(n);
  return true;
}

inline bool get_f32(napi_env env, napi_value v, const char* fn, const char* name, F32* out) {
  void* data = nullptr;
  if (!typed(env, v, napi_float32_array, fn, name, &data, &out->len)) return false;
  out->data = static_cast<float*>(data);
  return true;
}

inline bool get_i32(napi_env env, napi_value v, const char* fn, const char* name, I32* out) {
  void* data = nullptr;
  if (!typed(env, v, napi_int32_array, fn, name, &data, &out->len)) return false;
  out->data = static_cast<int32_t*>(data);
  return true;
}

inline bool get_num(napi_env env, napi_value v, const char* fn, const char* name, double* out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    return throw_msg(env, true, "%s: %s must be a number, got %s", fn, name, describe(env, v));
  }
  return true;
}

inline bool get_bool(napi_env env, napi_value v, const char* fn, const char* name, bool* out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    return throw_msg(env, true, "%s: %s must be a boolean, got %s", fn, name, describe(env, v));
  }
  return true;
}

// A dimension: an integer in [0, INT_MAX], since BLAS takes int.
inline bool get_dim(napi_env env, napi_value v, const char* fn, const char* name, int64_t* out) {
  double d;
  if (!get_num(env, v, fn, name, &d)) return false;
  if (!(d >= 0 && d <= static_cast<double>(INT_MAX) && d == std::floor(d))) {
    return throw_msg(env, false, "%s: %s must be a non-negative integer, got %.17g", fn, name, d);
  }
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool need(napi_env env, const char* fn, const char* name, int64_t have, int64_t want, const char* what) {
  if (have < want) {
    return throw_msg(env, false, "%s: %s has %lld elements, needs at least %lld (%s)", fn, name,
                     static_cast<long long>(have), static_cast<long long>(want), what);
  }
  return true;
}

inline bool overlaps(const float* x, int64_t xn, const float* y, int64_t yn) {
  if (xn == 0 || yn == 0) return false;
  auto x0 = reinterpret_cast<uintptr_t>(x), y0 = reinterpret_cast<uintptr_t>(y);
  return x0 < y0 + static_cast<uintptr_t>(yn) * 4 && y0 < x0 + static_cast<uintptr_t>(xn) * 4;
}

template <size_t N>
inline bool args(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;  // missing arguments come back as undefined and fail their type check
  return napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok;
}

// {loss, correct}: a batch's summed loss and correct count (BatchResult on the JS side); null after a failure.
inline napi_value batch_result(napi_env env, double loss, double correct) {
  napi_value result, v_loss, v_correct;
  if (napi_create_object(env, &result) != napi_ok || napi_create_double(env, loss, &v_loss) != napi_ok ||
      napi_create_double(env, correct, &v_correct) != napi_ok ||
      napi_set_named_property(env, result, "loss", v_loss) != napi_ok ||
      napi_set_named_property(env, result, "correct", v_correct) != napi_ok) {
    return nullptr;
  }
  return result;
}

}  // namespace edgefed
