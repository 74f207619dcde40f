import NIOCore
import TensorCore

/// Symmetric integer quantization with one fp32 scale per block: int8 (levels −127…127) or int4
/// (levels −7…7, two per byte, low nibble first, stored offset by 8).
///
/// Per block on the wire: the scale (max |x| / qmax, 4 bytes), then the levels. Decoded value =
/// level · scale.
public struct BlockQuantizedCodec: VectorCodec {
    /// 8 or 4.
    public let bits: Int
    /// Values per scale.
    public let block: Int

    public init(bits: Int, block: Int) {
        precondition(bits == 8 || bits == 4, "[BlockQuantizedCodec] bits must be 8 or 4, got \(bits)")
        self.bits = bits
        self.block = block
    }

    var maxLevel: Float { bits == 8 ? 127 : 7 }

    public var id: CodecID { (bits == 8 ? CodecID.int8(block: block) : CodecID.int4(block: block))! }
    public var name: String { "int\(bits)/\(block)" }

    private func levelBytes(_ n: Int) -> Int { bits == 8 ? n : (n + 1) / 2 }

    public func encodedByteCount(count: Int) -> Int {
        let full = count / block, rest = count % block
        return full * (4 + levelBytes(block)) + (rest > 0 ? 4 + levelBytes(rest) : 0)
    }

    /// Nearest: half a step (max|block| / 2·qmax); stochastic: under one step (max|block| / qmax).
    public func errorBound(rounding: RoundingMode) -> ErrorBound {
        let step = 1 / maxLevel
        return ErrorBound(ofBlockMax: rounding == .nearest ? step / 2 * 1.0001 : step * 1.0001, blockSize: block)
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom) {
        let n = values.count
        let total = encodedByteCount(count: n)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { raw in
            var out = raw.baseAddress!
            var start = 0
            while start < n {
                let len = min(block, n - start)
                out = encodeBlock(values.baseAddress! + start, count: len, to: out, rounding: rounding, random: &random)
                start += len
            }
            return total
        }
    }

    @inline(__always)
    private func encodeBlock(_ x: UnsafePointer<Float>, count n: Int, to out: UnsafeMutableRawPointer,
                             rounding: RoundingMode, random: inout LaneRandom) -> UnsafeMutableRawPointer {
        var maxVector = FloatVector(repeating: 0)
        var i = 0
        while i &+ 16 <= n {
            maxVector = vectorMax(maxVector, absolute(loadVector(x + i)))
            i &+= 16
        }
        if i < n { maxVector = vectorMax(maxVector, absolute(loadPartial(x + i, count: n &- i))) }
        let maxAbs = maxVector.max()
        let scale = maxAbs / maxLevel
        out.storeBytes(of: scale, as: Float.self)
        let inverse = FloatVector(repeating: maxAbs > 0 ? maxLevel / maxAbs : 0)
        let top = FloatVector(repeating: maxLevel)
        let stochastic = rounding == .stochastic
        let levels = out + 4
        i = 0
        while i < n {
            let width = min(16, n &- i)
            let v = width == 16 ? loadVector(x + i) : loadPartial(x + i, count: width)
            // floor(y + u) for stochastic rounding is round-to-nearest of y + u − ½.
            var y = v * inverse
            if stochastic { y += random.next() - 0.5 }
            let q = roundToInt(vectorMin(vectorMax(y, -top), top))
            if bits == 8 {
                let bytes = SIMD16<Int8>(truncatingIfNeeded: q)
                withUnsafeBytes(of: bytes) { (levels + i).copyMemory(from: $0.baseAddress!, byteCount: width) }
            } else {
                let offset = SIMD16<UInt8>(truncatingIfNeeded: q &+ 8)
                let packed = offset.evenHalf | (offset.oddHalf &<< 4)
                withUnsafeBytes(of: packed) { (levels + i / 2).copyMemory(from: $0.baseAddress!, byteCount: (width + 1) / 2) }
            }
            i &+= width
        }
        return levels + levelBytes(n)
    }

    public func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        try checkSize(payload, count: output.count)
        payload.withUnsafeReadableBytes { raw in
            var input = raw.baseAddress!
            var start = 0
            while start < output.count {
                let len = min(block, output.count - start)
                let scale = FloatVector(repeating: input.loadUnaligned(as: Float.self))
                let levels = input + 4
                let slice = UnsafeMutableBufferPointer(rebasing: output[start..<(start + len)])
                if bits == 8 {
                    decodeLanes(into: slice, accumulate: accumulate) { i, width in
                        var q = SIMD16<Int8>(repeating: 0)
                        withUnsafeMutableBytes(of: &q) { $0.baseAddress!.copyMemory(from: levels + i, byteCount: width) }
                        return FloatVector(SIMD16<Int32>(truncatingIfNeeded: q)) * scale
                    }
                } else {
                    decodeLanes(into: slice, accumulate: accumulate) { i, width in
                        var packed = SIMD8<UInt8>(repeating: 0x88)
                        withUnsafeMutableBytes(of: &packed) { $0.baseAddress!.copyMemory(from: levels + i / 2, byteCount: (width + 1) / 2) }
                        var q = SIMD16<Int32>(repeating: 0)
                        q.evenHalf = SIMD8<Int32>(truncatingIfNeeded: packed & 0x0F) &- 8
                        q.oddHalf = SIMD8<Int32>(truncatingIfNeeded: packed &>> 4) &- 8
                        return FloatVector(q) * scale
                    }
                }
                input = levels + levelBytes(len)
                start += len
            }
        }
    }
}

/// |x| lane-wise, by clearing the sign bit.
@inline(__always)
func absolute(_ x: FloatVector) -> FloatVector {
    unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: FloatVector.self)
}

/// Round to nearest (ties to even) and convert, for |x| < 2²²: the 1.5·2²³ trick.
@inline(__always)
func roundToInt(_ x: FloatVector) -> SIMD16<Int32> {
    let magic = FloatVector(repeating: 12_582_912)
    return unsafeBitCast(x + magic, to: SIMD16<Int32>.self) &- 0x4B40_0000
}
