{
  # Built by scripts/build-native.mjs. Needs g++ and OpenBLAS (Debian/Ubuntu: libopenblas-dev).
  "targets": [
    {
      "target_name": "edgefed_kernels",
      "sources": ["kernels.cc", "dense-team.cc"],
      # -march=native: the addon is built on the machine that runs it (npm install), never shipped.
      # -ffp-contract=off: no fused multiply-add in our loops, so they round exactly as the JS kernels do.
      # -fno-math-errno lets sqrt vectorise; it does not change results (unlike -ffast-math, which would
      # break NaN and Inf semantics and is deliberately not used).
      "cflags_cc": ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"],
      "libraries": ["-lopenblas"]
    }
  ]
}
