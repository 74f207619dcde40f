import NIOCore
import TensorCore

/// Chunked top-k sparsification: of every 4096 values keep the k largest in magnitude, each sent as
/// a 12-bit index and a `bits`-bit level on a per-chunk grid.
///
/// Per chunk on the wire: the scale s = max |x| (4 bytes), then k indices (12 bits each,
/// ascending), then k levels (`bits` each); both bit streams little-endian and padded to a byte.
/// Level q of L = 2^bits decodes to s·(2q/(L−1) − 1): the grid spans [−s, s] and has no zero,
/// since kept values are the large ones. A chunk shorter than k keeps all its values. What is
/// dropped is meant to be carried forward by `ErrorFeedback`.
public struct TopKCodec: VectorCodec {
    /// Values per chunk (indices are 12 bits).
    public static let chunk = 4096
    /// Values kept per chunk.
    public let k: Int
    /// Bits per kept value (2…8).
    public let bits: Int

    public init(k: Int, bits: Int) {
        precondition(k > 0 && k <= Self.chunk && (2...8).contains(bits), "[TopKCodec] k \(k), bits \(bits)")
        self.k = k
        self.bits = bits
    }

    public var id: CodecID { CodecID.topK(k: k, bits: bits)! }
    public var name: String { "top\(k)of\(Self.chunk)/\(bits)bit" }

    private func chunkBytes(kept: Int) -> Int { 4 + (kept * 12 + 7) / 8 + (kept * bits + 7) / 8 }

    public func encodedByteCount(count: Int) -> Int {
        let full = count / Self.chunk, rest = count % Self.chunk
        return full * chunkBytes(kept: k) + (rest > 0 ? chunkBytes(kept: min(k, rest)) : 0)
    }

    /// Dropped values are at most the chunk's maximum; kept ones are within one grid step
    /// (nearest: half a step) of 2s/(L−1).
    public func errorBound(rounding: RoundingMode) -> ErrorBound {
        ErrorBound(ofBlockMax: 1, blockSize: Self.chunk)
    }

    /// The grid error bound for a kept value, as a fraction of the chunk's maximum.
    public func keptValueError(rounding: RoundingMode) -> Float {
        let step = 2 / Float((1 << bits) - 1)
        return (rounding == .nearest ? step / 2 : step) * 1.0001
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: inout ByteBuffer, rounding: RoundingMode, random: inout LaneRandom) {
        let n = values.count
        let total = encodedByteCount(count: n)
        let chunk = Self.chunk
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { magnitudes in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: k) { picked in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { raw in
                    var out = raw.baseAddress!
                    var start = 0
                    while start < n {
                        let len = min(chunk, n - start)
                        let kept = min(k, len)
                        let x = values.baseAddress! + start
                        select(x, count: len, kept: kept, magnitudes: magnitudes.baseAddress!, picked: picked.baseAddress!)
                        var scale: Float = 0
                        for j in 0..<kept { scale = max(scale, abs(x[picked[j]])) }
                        out.storeBytes(of: scale, as: Float.self)
                        var writer = BitWriter(out + 4)
                        for j in 0..<kept { writer.write(UInt32(picked[j]), bits: 12) }
                        writer.flush()
                        var levelWriter = BitWriter(out + 4 + (kept * 12 + 7) / 8)
                        let top = Float((1 << bits) - 1)
                        var noise = FloatVector(repeating: 0.5)
                        for j in 0..<kept {
                            if rounding == .stochastic && j % 16 == 0 { noise = random.next() }
                            let u = rounding == .stochastic ? noise[j % 16] : 0.5
                            let y = scale > 0 ? (x[picked[j]] / scale + 1) * top / 2 : 0
                            let q = min(top, max(0, (y + u).rounded(.down)))
                            levelWriter.write(UInt32(q), bits: bits)
                        }
                        levelWriter.flush()
                        out += chunkBytes(kept: kept)
                        start += len
                    }
                    return total
                }
            }
        }
    }

    /// Puts the indices of the `kept` largest |x| into `picked`, ascending. Ties at the threshold go
    /// to the lower indices, so the choice is deterministic.
    private func select(_ x: UnsafePointer<Float>, count n: Int, kept: Int,
                        magnitudes: UnsafeMutablePointer<Float>, picked: UnsafeMutablePointer<Int>) {
        if kept == n {
            for i in 0..<n { picked[i] = i }
            return
        }
        for i in 0..<n { magnitudes[i] = abs(x[i]) }
        // A min-heap of the k largest costs one comparison for most values when k ≪ n.
        let threshold = kept * 32 <= n ? kthLargestByHeap(magnitudes, count: n, k: kept) : kthLargest(magnitudes, count: n, k: kept)
        var above = 0
        for i in 0..<n where abs(x[i]) > threshold { above += 1 }
        var tiesAllowed = kept - above
        var m = 0
        for i in 0..<n {
            let a = abs(x[i])
            if a > threshold || (a == threshold && tiesAllowed > 0) {
                if a == threshold { tiesAllowed -= 1 }
                picked[m] = i
                m += 1
            }
        }
    }

    public func decode(_ payload: ByteBuffer, into output: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        try checkSize(payload, count: output.count)
        if !accumulate { output.update(repeating: 0) }
        let chunk = Self.chunk
        try payload.withUnsafeReadableBytes { raw in
            var input = raw.baseAddress!
            var start = 0
            let top = Float((1 << bits) - 1)
            while start < output.count {
                let len = min(chunk, output.count - start)
                let kept = min(k, len)
                let scale = input.loadUnaligned(as: Float.self)
                guard scale.isFinite, scale >= 0 else { throw WireError.malformedPayload("top-k chunk scale \(scale)") }
                var indices = BitReader(input + 4)
                var levels = BitReader(input + 4 + (kept * 12 + 7) / 8)
                var previous = -1
                for _ in 0..<kept {
                    let index = Int(indices.read(bits: 12))
                    guard index < len, index > previous else {
                        throw WireError.malformedPayload("top-k index \(index) out of order or past the chunk of \(len)")
                    }
                    previous = index
                    let q = Float(levels.read(bits: bits))
                    output[start + index] += scale * (2 * q / top - 1)
                }
                input += chunkBytes(kept: kept)
                start += len
            }
        }
    }
}

/// The k-th largest of `count` values (1-based k), keeping the k largest in a min-heap built in
/// the first k slots of `values` (which it reorders).
func kthLargestByHeap(_ values: UnsafeMutablePointer<Float>, count: Int, k: Int) -> Float {
    func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < k && values[l] < values[smallest] { smallest = l }
            if r < k && values[r] < values[smallest] { smallest = r }
            if smallest == i { return }
            values.swapAt(i, smallest)
            i = smallest
        }
    }
    for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
    for i in k..<count where values[i] > values[0] {
        values[0] = values[i]
        siftDown(0)
    }
    return values[0]
}

/// The k-th largest of `count` values (1-based k), by quickselect; reorders `values`.
func kthLargest(_ values: UnsafeMutablePointer<Float>, count: Int, k: Int) -> Float {
    var lo = 0, hi = count - 1
    let target = k - 1 // index in descending order
    while lo < hi {
        // Median of three as pivot keeps sorted and constant inputs linear.
        let mid = lo + (hi - lo) / 2
        let pivot = max(min(values[lo], values[mid]), min(max(values[lo], values[mid]), values[hi]))
        var i = lo, j = hi
        while i <= j {
            while values[i] > pivot { i += 1 }
            while values[j] < pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { return values[target] }
    }
    return values[target]
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always)
    fileprivate func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]
        self[i] = self[j]
        self[j] = t
    }
}

/// Packs values of up to 32 bits, least significant bit first.
struct BitWriter {
    private var out: UnsafeMutableRawPointer
    private var pending: UInt64 = 0
    private var pendingBits = 0

    init(_ out: UnsafeMutableRawPointer) { self.out = out }

    mutating func write(_ value: UInt32, bits: Int) {
        pending |= UInt64(value & UInt32((1 << bits) - 1)) << UInt64(pendingBits)
        pendingBits += bits
        while pendingBits >= 8 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: pending), as: UInt8.self)
            out += 1
            pending >>= 8
            pendingBits -= 8
        }
    }

    mutating func flush() {
        if pendingBits > 0 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: pending), as: UInt8.self)
            out += 1
            pending = 0
            pendingBits = 0
        }
    }
}

/// Reads what `BitWriter` wrote.
struct BitReader {
    private var input: UnsafeRawPointer
    private var pending: UInt64 = 0
    private var pendingBits = 0

    init(_ input: UnsafeRawPointer) { self.input = input }

    mutating func read(bits: Int) -> UInt32 {
        while pendingBits < bits {
            pending |= UInt64(input.load(as: UInt8.self)) << UInt64(pendingBits)
            input += 1
            pendingBits += 8
        }
        let value = UInt32(truncatingIfNeeded: pending & ((1 << UInt64(bits)) - 1))
        pending >>= UInt64(bits)
        pendingBits -= bits
        return value
    }
}
