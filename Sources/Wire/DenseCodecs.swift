import NIOCore
import TensorCore

/// Raw little-endian fp32: 4 bytes per value, exact.
public struct Float32Codec: VectorCodec {
    public init() {}
    public var id: CodecID { .fp32 }
    public var name: String { "fp32" }
    public func encodedByteCount(count: Int) -> Int { 4 * count }
    public func errorBound(rounding: RoundingMode) -> ErrorBound { ErrorBound() }

    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom) {
        buffer.writeBytes(UnsafeRawBufferPointer(values))
    }

    public func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        try checkSize(payload, count: output.count)
        payload.withUnsafeReadableBytes { raw in
            let n = output.count
            let out = output.baseAddress!
            var i = 0
            while i &+ 16 <= n {
                let v = raw.loadUnaligned(fromByteOffset: i &* 4, as: FloatVector.self)
                storeVector(accumulate ? loadVector(out + i) + v : v, out + i)
                i &+= 16
            }
            while i < n {
                let v = raw.loadUnaligned(fromByteOffset: i &* 4, as: Float.self)
                out[i] = accumulate ? out[i] + v : v
                i &+= 1
            }
        }
    }
}

/// IEEE half precision: 2 bytes per value, round to nearest even, saturating at ±65504.
public struct Float16Codec: VectorCodec {
    public init() {}
    public var id: CodecID { .fp16 }
    public var name: String { "fp16" }
    public func encodedByteCount(count: Int) -> Int { 2 * count }

    /// Relative 2⁻¹¹ in the normal range; 2⁻²⁵ absolute below it. Values beyond ±65504 saturate.
    public func errorBound(rounding: RoundingMode) -> ErrorBound {
        ErrorBound(relative: 1.0 / 2048, absolute: 1.0 / 33_554_432)
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom) {
        let limit = FloatVector(repeating: 65504)
        encodeHalfWidth(values, into: &buffer) { x in
            unsafeBitCast(SIMD16<Float16>(vectorMin(vectorMax(x, -limit), limit)), to: SIMD16<UInt16>.self)
        }
    }

    public func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        try checkSize(payload, count: output.count)
        payload.withUnsafeReadableBytes { raw in
            decodeLanes(into: output, accumulate: accumulate) { i, width in
                var h = SIMD16<Float16>(repeating: 0)
                withUnsafeMutableBytes(of: &h) { $0.baseAddress!.copyMemory(from: raw.baseAddress! + 2 &* i, byteCount: 2 &* width) }
                return FloatVector(h)
            }
        }
    }
}

/// bfloat16 (the top half of an fp32): 2 bytes per value, fp32's range, round to nearest even.
public struct BFloat16Codec: VectorCodec {
    public init() {}
    public var id: CodecID { .bf16 }
    public var name: String { "bf16" }
    public func encodedByteCount(count: Int) -> Int { 2 * count }

    /// Relative 2⁻⁸ (8 significant bits).
    public func errorBound(rounding: RoundingMode) -> ErrorBound { ErrorBound(relative: 1.0 / 256) }

    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom) {
        encodeHalfWidth(values, into: &buffer) { x in
            let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
            var rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
            rounded.replace(with: 0x7FC0, where: x .!= x) // keep NaN a NaN
            return SIMD16<UInt16>(truncatingIfNeeded: rounded)
        }
    }

    public func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        try checkSize(payload, count: output.count)
        payload.withUnsafeReadableBytes { raw in
            decodeLanes(into: output, accumulate: accumulate) { i, width in
                var h = SIMD16<UInt16>(repeating: 0)
                withUnsafeMutableBytes(of: &h) { $0.baseAddress!.copyMemory(from: raw.baseAddress! + 2 &* i, byteCount: 2 &* width) }
                return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: FloatVector.self)
            }
        }
    }
}

/// Appends 2 bytes per value: `convert` turns sixteen floats into their 16-bit encodings.
@inline(__always)
func encodeHalfWidth(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, _ convert: (FloatVector) -> SIMD16<UInt16>) {
    let n = values.count
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 * n) { raw in
        let src = values.baseAddress!
        var i = 0
        while i < n {
            let width = min(16, n &- i)
            let h = convert(width == 16 ? loadVector(src + i) : loadPartial(src + i, count: width))
            withUnsafeBytes(of: h) { (raw.baseAddress! + 2 &* i).copyMemory(from: $0.baseAddress!, byteCount: 2 &* width) }
            i &+= width
        }
        return 2 * n
    }
}

/// Walks `output` sixteen values at a time, storing or adding what `lanes(start, width)` returns.
@inline(__always)
func decodeLanes(into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool, _ lanes: (Int, Int) -> FloatVector) {
    let n = output.count
    let out = output.baseAddress!
    var i = 0
    while i < n {
        let width = min(16, n &- i)
        var v = lanes(i, width)
        if width == 16 {
            if accumulate { v += loadVector(out + i) }
            storeVector(v, out + i)
        } else {
            if accumulate { v += loadPartial(out + i, count: width) }
            storePartial(v, out + i, count: width)
        }
        i &+= width
    }
}
