/**
 * ONNX for the compact vision layers (nn/vision-ops.ts), on channels-last tensors as the rest of the
 * exported graph:
 * - DepthwiseConv2D -> Conv with group = channels (weight [c * dm, 1, k, k]: output channel ci * dm + q is
 *   input channel ci's q-th filter, as Keras orders them), TensorFlow's 'same' pads written out;
 * - SeparableConv2D -> that depthwise Conv (no bias) then a 1 x 1 Conv with the bias, one NCHW span;
 * - BatchNormalization -> the ONNX BatchNormalization op in inference form (moving mean and variance,
 *   epsilon), not folded, so the file keeps the layer a FedBN user would look for; channels first;
 * - GlobalAveragePooling2D -> GlobalAveragePool then Flatten.
 * Each NCHW op sits between two Transposes; ONNX Runtime's optimiser removes the back-to-back pairs.
 *
 * BROWSER-SAFE: imports nothing from Node.
 */
import type { VisionLayer } from '../../nn/vision-ops.js';
import { convWeight, tfPads, toChannelsFirst, toChannelsLast, type GraphBuilder } from './graph.js';

/** The layer's weights: trainable ones in order, state (moving statistics) by tensor name. */
export interface LayerWeights {
  take(): Float32Array;
  state(name: string): Float32Array;
}

/** Adds one vision layer after `x` (channels last, per-example `shape`); returns its output and shape. */
export function visionLayer(
  b: GraphBuilder,
  l: VisionLayer,
  x: string,
  shape: number[],
  w: LayerWeights,
): { x: string; shape: number[] } {
  switch (l.type) {
    case 'depthwiseconv2d':
    case 'separableconv2d': {
      const [h, wd, c] = shape;
      const k = l.kernelSize;
      const dm = l.type === 'depthwiseconv2d' ? l.depthMultiplier : 1;
      const conv = {
        kernel_shape: [k, k],
        strides: [l.strides, l.strides],
        pads: tfPads(h, wd, k, l.strides, l.padding),
      };
      // Keras [k, k, c, dm] read as [k * k, 1, c * dm]: the grouped Conv weight [c * dm, 1, k, k].
      const dw = b.weight(`${l.name}/depthwise_kernel`, [c * dm, 1, k, k], convWeight(w.take(), k * k, 1, c * dm), 0);
      const inputs = [b.one('Transpose', [x], { perm: toChannelsFirst(3) }), dw];
      let y: string;
      let channels = c * dm;
      if (l.type === 'depthwiseconv2d') {
        if (l.useBias !== false) inputs.push(b.floats(`${l.name}/bias`, [channels], w.take()));
        y = b.one('Conv', inputs, { ...conv, group: c });
      } else {
        const pw = b.weight(
          `${l.name}/pointwise_kernel`,
          [l.filters, c, 1, 1],
          convWeight(w.take(), 1, c, l.filters),
          0,
        );
        const bias = b.floats(`${l.name}/bias`, [l.filters], w.take());
        y = b.one('Conv', [b.one('Conv', inputs, { ...conv, group: c }), pw, bias], { kernel_shape: [1, 1] });
        channels = l.filters;
      }
      const out = (n: number) => (l.padding === 'same' ? Math.ceil(n / l.strides) : Math.ceil((n - k + 1) / l.strides));
      return {
        x: b.activation(b.one('Transpose', [y], { perm: toChannelsLast(3) }), l.activation),
        shape: [out(h), out(wd), channels],
      };
    }
    case 'batchnorm': {
      const C = shape[shape.length - 1];
      const gamma = b.floats(`${l.name}/gamma`, [C], w.take());
      const beta = b.floats(`${l.name}/beta`, [C], w.take());
      const mean = b.floats(`${l.name}/moving_mean`, [C], w.state(`${l.name}/moving_mean`));
      // The engine normalises with max(variance, 0): a variance pushed below zero by noise must not give NaN.
      const variance = Float32Array.from(w.state(`${l.name}/moving_variance`), (v) => Math.max(v, 0));
      const vari = b.floats(`${l.name}/moving_variance`, [C], variance);
      const bn = (t: string) =>
        b.one('BatchNormalization', [t, gamma, beta, mean, vari], { epsilon: { float: l.epsilon } });
      if (shape.length === 1) return { x: bn(x), shape };
      const rank = shape.length;
      const first = b.one('Transpose', [x], { perm: toChannelsFirst(rank) });
      return { x: b.one('Transpose', [bn(first)], { perm: toChannelsLast(rank) }), shape };
    }
    case 'globalavgpool2d': {
      const pooled = b.one('GlobalAveragePool', [b.one('Transpose', [x], { perm: toChannelsFirst(3) })]);
      return { x: b.one('Flatten', [pooled], { axis: 1 }), shape: [shape[2]] };
    }
  }
}
