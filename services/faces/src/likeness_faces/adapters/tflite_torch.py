"""A TFLite model's graph run by PyTorch, so MediaPipe's networks run batched on CUDA.

LiteRT (the TFLite interpreter faces runs the mesh with on the CPU) takes one image per call
and has no CUDA path. This reads the same file (the flatbuffer, through the TFLite schema module
LiteRT's wheel carries, so the reader is the one the interpreter itself was built against) and
keeps every weight as the file stores it (float16 weights are dequantised to float32 exactly as
TFLite's DEQUANTIZE does) and runs the operators in file order with torch functions. Tensors
keep TFLite's layout (NHWC); a convolution sees its input as a channels-last view, which cuDNN
and oneDNN take without a copy. The batch dimension is free: every graph input's first
dimension may be any N.

Only the operators MediaPipe's face networks use are implemented; a file with any other
operator is refused when loaded, naming it, rather than computing something else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ai_edge_litert import schema_py_generated as tflite

ActivationFunctionType = tflite.ActivationFunctionType
BuiltinOperator = tflite.BuiltinOperator
Padding = tflite.Padding
TensorType = tflite.TensorType

Tensor = torch.Tensor
Kernel = Callable[[list[Tensor | None]], Tensor]

_NUMPY_TYPES = {
    TensorType.FLOAT32: np.float32,
    TensorType.FLOAT16: np.float16,
    TensorType.INT32: np.int32,
    TensorType.INT64: np.int64,
}
_OPERATOR_NAMES = {value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")}


class UnsupportedModelError(ValueError):
    """The file uses something this runner does not implement."""


def _activation(code: int) -> Callable[[Tensor], Tensor]:
    if code == ActivationFunctionType.NONE:
        return lambda x: x
    if code == ActivationFunctionType.RELU:
        return torch.relu
    if code == ActivationFunctionType.RELU6:
        return lambda x: torch.clamp(x, 0.0, 6.0)
    if code == ActivationFunctionType.RELU_N1_TO_1:
        return lambda x: torch.clamp(x, -1.0, 1.0)
    raise UnsupportedModelError(f"fused activation {code} is not supported")


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after); the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_pad(x: Tensor, padding: int, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> Tensor:
    """x (N×C×H×W view) padded for TFLite's SAME; unchanged for VALID."""
    if padding == Padding.VALID:
        return x
    top, bottom = same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


def _nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


@dataclass
class _Step:
    name: str
    inputs: list[int]
    output: int
    run: Kernel


class TfliteGraph(torch.nn.Module):
    """The first subgraph of a .tflite file as a torch module: forward(*inputs) -> outputs,
    in the file's input and output order, NHWC like the file."""

    def __init__(self, model_bytes: bytes) -> None:
        super().__init__()
        if bytes(model_bytes[4:8]) != b"TFL3":
            raise UnsupportedModelError("not a TFLite model (its flatbuffer has no TFL3 identifier)")
        model = tflite.Model.GetRootAs(model_bytes, 0)
        if model.SubgraphsLength() != 1:
            raise UnsupportedModelError(f"{model.SubgraphsLength()} subgraphs; one is supported")
        graph = model.Subgraphs(0)
        # (a scalar's shape comes back from the schema as the int 0, not an empty array)
        self._shapes = {
            i: [int(v) for v in np.atleast_1d(graph.Tensors(i).ShapeAsNumpy())] if graph.Tensors(i).ShapeLength() else []
            for i in range(graph.TensorsLength())
        }
        self.input_ids = [graph.Inputs(i) for i in range(graph.InputsLength())]
        self.output_ids = [graph.Outputs(i) for i in range(graph.OutputsLength())]
        self.input_shapes = [self._shapes[i] for i in self.input_ids]
        constants: dict[int, np.ndarray] = {}
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                kind = _NUMPY_TYPES.get(tensor.Type())
                if kind is None:
                    raise UnsupportedModelError(f"constant {tensor.Name().decode()} has tensor type {tensor.Type()}")
                constants[i] = np.frombuffer(data.tobytes(), dtype=kind).reshape(self._shapes[i])
        self._steps: list[_Step] = []
        self._relaid: set[int] = set()
        for k in range(graph.OperatorsLength()):
            op = graph.Operators(k)
            code_entry = model.OperatorCodes(op.OpcodeIndex())
            code = max(code_entry.BuiltinCode(), code_entry.DeprecatedBuiltinCode())
            name = _OPERATOR_NAMES.get(code, f"builtin {code}")
            inputs = [int(v) for v in op.InputsAsNumpy()]
            outputs = [int(v) for v in op.OutputsAsNumpy()]
            if len(outputs) != 1:
                raise UnsupportedModelError(f"{name} with {len(outputs)} outputs is not supported")
            if code == BuiltinOperator.DEQUANTIZE:
                # float16 weights: TFLite widens them once; so do we, at load time
                if inputs[0] not in constants or constants[inputs[0]].dtype != np.float16:
                    raise UnsupportedModelError("DEQUANTIZE is supported for float16 weights only")
                constants[outputs[0]] = constants[inputs[0]].astype(np.float32)
                continue
            kernel = self._kernel(code, name, op, inputs, constants)
            self._steps.append(_Step(name, inputs, outputs[0], kernel))
        used = {i for step in self._steps for i in step.inputs}
        self._constants = sorted(i for i in constants if i in used)
        for index in self._constants:
            self.register_buffer(f"c{index}", torch.from_numpy(np.array(constants[index], copy=True, order="C")), persistent=False)

    def _relayout(self, constants: dict[int, np.ndarray], index: int, value: np.ndarray) -> None:
        """A weight put in torch's layout, in place of the file's; one operator reads it."""
        if index in self._relaid:
            raise UnsupportedModelError(f"weight tensor {index} is shared by two convolutions")
        self._relaid.add(index)
        constants[index] = value

    # -- operators ---------------------------------------------------------------------

    def _kernel(self, code: int, name: str, op: object, inputs: list[int], constants: dict[int, np.ndarray]) -> Kernel:
        options = op.BuiltinOptions()  # type: ignore[attr-defined]

        def parsed(kind: type) -> object:
            value = kind()
            value.Init(options.Bytes, options.Pos)
            return value

        def constant(position: int) -> np.ndarray:
            index = inputs[position]
            if index not in constants:
                raise UnsupportedModelError(f"{name}: input {position} must be a constant")
            return constants[index]

        if code == BuiltinOperator.CONV_2D:
            o = parsed(tflite.Conv2DOptions)
            weight = constant(1)  # O×kh×kw×I
            self._relayout(constants, inputs[1], weight.transpose(0, 3, 1, 2))
            stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
            kernel_hw, act, padding = weight.shape[1:3], _activation(o.FusedActivationFunction()), o.Padding()

            def conv(args: list[Tensor | None]) -> Tensor:
                x = _spatial_pad(_nchw(args[0]), padding, kernel_hw, stride, dilation)
                return _nhwc(act(F.conv2d(x, args[1], args[2] if len(args) > 2 else None, stride, 0, dilation)))

            return conv
        if code == BuiltinOperator.DEPTHWISE_CONV_2D:
            o = parsed(tflite.DepthwiseConv2DOptions)
            weight = constant(1)  # 1×kh×kw×(C·m)
            self._relayout(constants, inputs[1], weight.transpose(3, 0, 1, 2))
            stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
            kernel_hw, act, padding = weight.shape[1:3], _activation(o.FusedActivationFunction()), o.Padding()
            groups = weight.shape[3] // max(o.DepthMultiplier(), 1)

            def depthwise(args: list[Tensor | None]) -> Tensor:
                x = _spatial_pad(_nchw(args[0]), padding, kernel_hw, stride, dilation)
                return _nhwc(act(F.conv2d(x, args[1], args[2] if len(args) > 2 else None, stride, 0, dilation, groups)))

            return depthwise
        if code == BuiltinOperator.MAX_POOL_2D:
            o = parsed(tflite.Pool2DOptions)
            kernel_hw, stride, padding = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW()), o.Padding()
            act = _activation(o.FusedActivationFunction())

            def max_pool(args: list[Tensor | None]) -> Tensor:
                x = _nchw(args[0])
                if padding == Padding.SAME:
                    top, bottom = same_padding(x.shape[2], kernel_hw[0], stride[0])
                    left, right = same_padding(x.shape[3], kernel_hw[1], stride[1])
                    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
                return _nhwc(act(F.max_pool2d(x, kernel_hw, stride)))

            return max_pool
        if code == BuiltinOperator.PAD:
            pads = constant(1).astype(np.int64)  # rank×2, outermost axis first
            flat = tuple(int(v) for pair in pads[::-1] for v in pair)
            return lambda args: F.pad(args[0], flat)
        if code == BuiltinOperator.PRELU:
            return lambda args: torch.where(args[0] >= 0, args[0], args[0] * args[1])
        if code == BuiltinOperator.RELU:
            return lambda args: torch.relu(args[0])
        if code == BuiltinOperator.LOGISTIC:
            return lambda args: torch.sigmoid(args[0])
        if code in (BuiltinOperator.ADD, BuiltinOperator.SUB, BuiltinOperator.MUL, BuiltinOperator.DIV):
            kind = {
                BuiltinOperator.ADD: tflite.AddOptions,
                BuiltinOperator.SUB: tflite.SubOptions,
                BuiltinOperator.MUL: tflite.MulOptions,
                BuiltinOperator.DIV: tflite.DivOptions,
            }[code]
            act = _activation(parsed(kind).FusedActivationFunction()) if options is not None else _activation(0)
            fn = {
                BuiltinOperator.ADD: torch.add,
                BuiltinOperator.SUB: torch.sub,
                BuiltinOperator.MUL: torch.mul,
                BuiltinOperator.DIV: torch.div,
            }[code]
            return lambda args: act(fn(args[0], args[1]))
        if code == BuiltinOperator.SQUARED_DIFFERENCE:
            return lambda args: torch.square(args[0] - args[1])
        if code == BuiltinOperator.NEG:
            return lambda args: torch.neg(args[0])
        if code == BuiltinOperator.SQRT:
            return lambda args: torch.sqrt(args[0])
        if code == BuiltinOperator.RSQRT:
            return lambda args: torch.rsqrt(args[0])
        if code in (BuiltinOperator.MEAN, BuiltinOperator.SUM):
            axes = tuple(int(v) for v in np.atleast_1d(constant(1)))
            keep = bool(parsed(tflite.ReducerOptions).KeepDims())
            fn = torch.mean if code == BuiltinOperator.MEAN else torch.sum
            return lambda args: fn(args[0], dim=axes, keepdim=keep)
        if code == BuiltinOperator.RESHAPE:
            target = self._shapes[op.Outputs(0)]  # type: ignore[attr-defined]
            return lambda args: args[0].reshape([args[0].shape[0], *target[1:]])
        if code == BuiltinOperator.TRANSPOSE:
            perm = [int(v) for v in constant(1)]
            if perm[0] != 0:
                raise UnsupportedModelError("TRANSPOSE that moves the batch axis is not supported")
            return lambda args: args[0].permute(perm)
        if code == BuiltinOperator.CONCATENATION:
            o = parsed(tflite.ConcatenationOptions)
            axis, act = o.Axis(), _activation(o.FusedActivationFunction())

            def concatenate(args: list[Tensor | None]) -> Tensor:
                parts = [a for a in args if a is not None]
                batch = max(a.shape[0] for a in parts)  # a constant (batch 1) joins every item
                return act(torch.cat([a.expand(batch, *a.shape[1:]) if a.shape[0] != batch else a for a in parts], dim=axis))

            return concatenate
        if code == BuiltinOperator.STRIDED_SLICE:
            return self._strided_slice(parsed(tflite.StridedSliceOptions), constant(1), constant(2), constant(3), name)
        raise UnsupportedModelError(f"operator {name} is not supported")

    @staticmethod
    def _strided_slice(o: object, begin: np.ndarray, end: np.ndarray, strides: np.ndarray, name: str) -> Kernel:
        if o.EllipsisMask() or o.NewAxisMask():  # type: ignore[attr-defined]
            raise UnsupportedModelError(f"{name} with ellipsis or new-axis masks is not supported")
        begin_mask, end_mask, shrink = o.BeginMask(), o.EndMask(), o.ShrinkAxisMask()  # type: ignore[attr-defined]
        slices: list[slice | int] = [slice(None)]  # the batch axis is kept whole, even where the file drops it
        for axis in range(1, len(begin)):
            start = None if begin_mask >> axis & 1 else int(begin[axis])
            if shrink >> axis & 1:
                slices.append(int(begin[axis]))
                continue
            stop = None if end_mask >> axis & 1 else int(end[axis])
            slices.append(slice(start, stop, int(strides[axis])))
        index = tuple(slices)
        return lambda args: args[0][index]

    @property
    def operators(self) -> list[str]:
        """The operators forward runs, in order (DEQUANTIZE of weights is done at load)."""
        return [step.name for step in self._steps]

    def forward(self, *inputs: Tensor) -> list[Tensor]:
        values: dict[int, Tensor] = dict(zip(self.input_ids, inputs, strict=True))
        for index in self._constants:
            values[index] = getattr(self, f"c{index}")
        for step in self._steps:
            args = [values[i] for i in step.inputs if i >= 0]
            values[step.output] = step.run(args)
        return [values[i] for i in self.output_ids]


def load(path: Path | bytes, device: torch.device | str = "cpu") -> TfliteGraph:
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    return TfliteGraph(data).to(device).eval()
