import Basics
import NIOCore

/// Error feedback for a lossy codec: what the wire could not carry this round is added to the
/// next round's input instead of being lost.
///
/// e ← β·e + δ; send Q(e); e ← e − decode(Q(e)). With β = 1 the sum of everything sent differs
/// from the sum of every δ by exactly the final residual, which stays bounded.
public final class ErrorFeedback {
    /// The residual e, one value per element of the vector range it serves.
    public private(set) var residual: [Float]
    /// Decay of the residual per round (SparseLoCo uses 0.95).
    public let beta: Float

    /// A zero residual for a range of `count` values.
    public init(count: Int, beta: Float = 1) {
        residual = [Float](repeating: 0, count: count)
        self.beta = beta
    }

    /// Puts back a saved residual (resuming a run); false when its size is wrong.
    public func restore(residual saved: [Float]) -> Bool {
        guard saved.count == residual.count else { return false }
        residual = saved
        return true
    }

    /// Adds `delta` to the residual, appends its encoding to `buffer`, and keeps what was lost.
    public func encode(_ delta: UnsafeBufferPointer<Float>, codec: any VectorCodec, rounding: RoundingMode,
                       random: inout LaneRandom, into buffer: inout ByteBuffer) throws {
        var decoded = [Float](repeating: 0, count: delta.count)
        try decoded.withUnsafeMutableBufferPointer {
            try feed(delta, fragment: 0, of: 1, codec: codec, rounding: rounding, random: &random, into: &buffer, decoded: $0)
        }
    }

    /// Adds `delta` to the residual and replaces `delta` with what the codec carries of the
    /// residual (encoded and decoded), keeping the rest for the next round. With `fragments` > 1
    /// it serves one fragment of the vector (see `InterleavedFragments`): `delta` holds that
    /// fragment's values in order; the rest of the residual waits.
    public func compress(_ delta: UnsafeMutableBufferPointer<Float>, fragment: Int = 0, of fragments: Int = 1, codec: any VectorCodec,
                         rounding: RoundingMode, random: inout LaneRandom) throws {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(codec.encodedByteCount(count: delta.count))
        try feed(UnsafeBufferPointer(delta), fragment: fragment, of: fragments, codec: codec, rounding: rounding, random: &random,
                 into: &buffer, decoded: delta)
    }

    /// e ← β·e + δ on the fragment, appends Q(e) to `buffer`, writes decode(Q(e)) to `decoded`
    /// (which may be `delta` itself: δ is read first), and keeps e − decode(Q(e)).
    private func feed(_ delta: UnsafeBufferPointer<Float>, fragment: Int, of fragments: Int, codec: any VectorCodec,
                      rounding: RoundingMode, random: inout LaneRandom, into buffer: inout ByteBuffer,
                      decoded: UnsafeMutableBufferPointer<Float>) throws {
        let layout = InterleavedFragments(count: residual.count, fragments: fragments)
        precondition(delta.count == layout.size(of: fragment),
                     "[ErrorFeedback] fragment \(fragment) of \(fragments): \(delta.count) values for a residual of \(residual.count)")
        let beta = beta
        let part = residual.withUnsafeBufferPointer { e in
            [Float](unsafeUninitializedCapacity: delta.count) { out, filled in
                layout.forEachRun(of: fragment) { values, offset in
                    let (e, d, out) = (e.baseAddress! + values.lowerBound, delta.baseAddress! + offset, out.baseAddress! + offset)
                    for k in 0..<values.count { out[k] = beta * e[k] + d[k] }
                }
                filled = delta.count
            }
        }
        let start = buffer.writerIndex
        part.withUnsafeBufferPointer { codec.encode($0, into: &buffer, rounding: rounding, random: &random) }
        try codec.decode(buffer.getSlice(at: start, length: buffer.writerIndex - start)!, into: decoded, accumulate: false)
        residual.withUnsafeMutableBufferPointer { e in
            part.withUnsafeBufferPointer { part in
                layout.forEachRun(of: fragment) { values, offset in
                    let (e, p, q) = (e.baseAddress! + values.lowerBound, part.baseAddress! + offset, decoded.baseAddress! + offset)
                    for k in 0..<values.count { e[k] = p[k] - q[k] }
                }
            }
        }
    }
}
