import NIOCore

/// How a lossy codec rounds to its grid.
public enum RoundingMode: Sendable, Hashable {
    /// Round to the nearest representable value: smallest error, biased.
    case nearest
    /// Round up with probability equal to the fractional part: unbiased, twice the error bound.
    case stochastic
}

/// How far a decoded value may be from the original, for one codec and rounding mode:
/// |decoded − x| ≤ relative·|x| + ofBlockMax·max|block| + absolute, where `block` is the
/// `blockSize` values that share a scale (the whole range when blockSize is 0).
public struct ErrorBound: Sendable, Hashable {
    public var relative: Float = 0
    public var ofBlockMax: Float = 0
    public var absolute: Float = 0
    public var blockSize = 0

    /// The bound for value `x` in a block whose largest magnitude is `blockMax`.
    public func limit(value x: Float, blockMax: Float) -> Float {
        relative * abs(x) + ofBlockMax * blockMax + absolute
    }
}

/// Encodes a range of a flat Float vector for the wire and decodes it back, adding into an fp32
/// accumulator (collectives always accumulate in fp32 whatever the wire carries).
///
/// Payload layout is codec-specific and little-endian; its size is a function of the element
/// count alone (`encodedByteCount`), so a frame's length can be checked before it is read.
public protocol VectorCodec: Sendable {
    /// The id carried in frame headers.
    var id: CodecID { get }
    /// Short human-readable name.
    var name: String { get }
    /// Wire bytes for `count` values.
    func encodedByteCount(count: Int) -> Int
    /// Worst-case error of one encode/decode round trip.
    func errorBound(rounding: RoundingMode) -> ErrorBound
    /// Appends the encoding of `values` to `buffer`.
    func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom)
    /// Decodes `output.count` values from the readable bytes of `payload`; adds them into `output`
    /// when `accumulate`, else overwrites it. Throws when the payload has the wrong size.
    func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws
}

extension VectorCodec {
    /// Nominal wire bytes per value, for large ranges.
    public var bytesPerValue: Double {
        Double(encodedByteCount(count: 1 << 20)) / Double(1 << 20)
    }

    func checkSize(_ payload: ByteBuffer, count: Int) throws {
        let expected = encodedByteCount(count: count)
        guard payload.readableBytes == expected else {
            throw WireError.payloadSizeMismatch(codec: name, count: count, expected: expected, actual: payload.readableBytes)
        }
    }
}

/// Sixteen independent xorshift32 streams, for stochastic rounding at SIMD speed.
public struct LaneRandom: Sendable {
    private var state: SIMD16<UInt32>

    /// Streams derived from `seed` by SplitMix64; the same seed gives the same numbers.
    public init(seed: UInt64) {
        var s = seed
        var lanes = SIMD16<UInt32>(repeating: 0)
        for i in 0..<16 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            lanes[i] = UInt32(truncatingIfNeeded: z ^ (z >> 31)) | 1 // xorshift state must not be 0
        }
        state = lanes
    }

    /// Sixteen uniform floats in [0, 1).
    @inline(__always)
    public mutating func next() -> SIMD16<Float> {
        state ^= state &<< 13
        state ^= state &>> 17
        state ^= state &<< 5
        return SIMD16<Float>(state &>> 8) * (1.0 / 16_777_216.0)
    }
}
