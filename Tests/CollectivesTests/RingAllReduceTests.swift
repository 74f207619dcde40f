import Dispatch
import Collectives
import NIOCore
import NIOPosix
import Transport
import Wire
import XCTest

/// Runs `body` on a heap copy of `array` (async code cannot use withUnsafeMutableBufferPointer),
/// then copies the result back.
func withHeapBuffer<T>(_ array: inout [Float], _ body: (UnsafeMutableBufferPointer<Float>) async throws -> T) async rethrows -> T {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: array.count)
    defer { buffer.deallocate() }
    _ = buffer.initialize(from: array)
    let result = try await body(buffer)
    array = Array(buffer)
    return result
}

final class RingAllReduceTests: XCTestCase {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// n workers joined by in-memory links into a ring.
    func memoryRing(_ n: Int, pieceValues: Int) -> [Ring] {
        var toNext: [MemoryLink?] = Array(repeating: nil, count: n), fromPrevious: [MemoryLink?] = Array(repeating: nil, count: n)
        if n > 1 {
            for r in 0..<n {
                let (a, b) = MemoryLink.pair("rank \(r)", "rank \((r + 1) % n)", eventLoop: loop)
                toNext[r] = a
                fromPrevious[(r + 1) % n] = b
            }
        }
        return (0..<n).map { r in
            var ring = Ring(rank: r, size: n, next: toNext[r], previous: fromPrevious[r], runID: 99)
            ring.pieceValues = pieceValues
            ring.window = 3
            ring.timeout = .seconds(20)
            return ring
        }
    }

    func inputs(n: Int, length: Int, seed: UInt64) -> [[Float]] {
        var random = LaneRandom(seed: seed)
        return (0..<n).map { _ in
            var v: [Float] = []
            while v.count < length { let u = random.next(); for i in 0..<16 { v.append(u[i] * 2 - 1) } }
            return Array(v.prefix(length))
        }
    }

    /// Runs the all-reduce on every ring member concurrently; returns each one's vector and stats.
    func runAllReduce(_ rings: [Ring], _ inputs: [[Float]], codec: CodecID, exactTail: Int = 0) async throws -> ([[Float]], [CollectiveStats]) {
        try await withThrowingTaskGroup(of: (Int, [Float], CollectiveStats).self) { group in
            for ring in rings {
                let input = inputs[ring.rank]
                group.addTask {
                    var random = LaneRandom(seed: UInt64(ring.rank) + 1)
                    var copy = input
                    let stats = try await withHeapBuffer(&copy) {
                        try await ring.allReduceSum($0, codec: codec, exactTail: exactTail, round: 5, random: &random)
                    }
                    return (ring.rank, copy, stats)
                }
            }
            var vectors = inputs
            var out = [CollectiveStats](repeating: CollectiveStats(), count: rings.count)
            for try await (rank, vector, stats) in group {
                vectors[rank] = vector
                out[rank] = stats
            }
            return (vectors, out)
        }
    }

    func testSumMatchesLocalSumForManyShapesAndCodecs() async throws {
        let codecs: [CodecID] = [.fp32, .fp16, .bf16, .int8(block: 32)!, .int4(block: 64)!, .topK(k: 8, bits: 4)!]
        var seed: UInt64 = 1
        for n in 1...6 {
            for length in [0, 1, 2, 5, 7, 13, 97, 1031] {
                for id in codecs {
                    seed += 1
                    let input = inputs(n: n, length: length, seed: seed)
                    let rings = memoryRing(n, pieceValues: 17)
                    let (results, stats) = try await runAllReduce(rings, input, codec: id)
                    let codec = id.codec
                    let bound = codec.errorBound(rounding: .nearest)
                    let exact = (0..<length).map { i in input.reduce(0.0) { $0 + Double($1[i]) } }
                    let absSum = (0..<length).map { i in input.reduce(Float(0)) { $0 + abs($1[i]) } }
                    let block = bound.blockSize == 0 ? max(length, 1) : bound.blockSize
                    for r in 0..<n where results[r] != results[0] {
                        XCTFail("workers 0 and \(r) disagree: n \(n) length \(length) \(id)")
                    }
                    for i in 0..<length {
                        // Codec blocks start at each frame's first value: find i's frame, then its block.
                        let chunk = (0..<n).map { c in (c * length / n)..<((c + 1) * length / n) }.first { $0.contains(i) }!
                        let pieceStart = chunk.lowerBound + (i - chunk.lowerBound) / rings[0].pieceValues * rings[0].pieceValues
                        let pieceEnd = min(chunk.upperBound, pieceStart + rings[0].pieceValues)
                        let blockStart = pieceStart + (i - pieceStart) / block * block
                        let blockMax = absSum[blockStart..<min(pieceEnd, blockStart + block)].max()!
                        // One quantisation per hop of the reduce-scatter and one for the all-gather.
                        let limit = Double(n) * Double(bound.limit(value: absSum[i], blockMax: blockMax)) + 1e-5 * Double(absSum[i])
                        XCTAssertLessThanOrEqual(abs(Double(results[0][i]) - exact[i]), limit, "n \(n) length \(length) \(id) at \(i)")
                    }
                    if id == .fp32 && n > 1 {
                        let payload = stats.reduce(0) { $0 + $1.bytesSent - $1.framesSent * FrameHeader.size }
                        XCTAssertEqual(payload, 2 * (n - 1) * 4 * length, "bytes on the wire: n \(n) length \(length)")
                    }
                }
            }
        }
    }

    /// Counts appended to a compressed vector come back exact, with the rest still compressed,
    /// also when the tail falls inside a piece or spans chunks.
    /// A paced collective's frames leave no faster than its pace (a background sum spread over the
    /// time it has), and the meter sees the difference in the busiest tenth of a second.
    func testAPacedSumSpreadsItsBytesAndTheMeterSeesThePeak() async throws {
        let n = 3, length = 30_000, pace = 100_000.0
        let vectors = inputs(n: n, length: length, seed: 11)
        let expected = (0..<length).map { i in vectors.reduce(Float(0)) { $0 + $1[i] } }
        var peaks: [Double] = []
        for paced in [false, true] {
            let meters = (0..<n).map { _ in SendRateMeter(windowSeconds: 0.1) }
            let rings = memoryRing(n, pieceValues: 1024).map { ring in
                var ring = ring
                ring.meter = meters[ring.rank]
                ring.pace = paced ? pace : nil
                return ring
            }
            let started = DispatchTime.now().uptimeNanoseconds
            let (out, stats) = try await runAllReduce(rings, vectors, codec: .fp32)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            for v in out { for i in 0..<length { XCTAssertEqual(v[i], expected[i], accuracy: 1e-4) } }
            if paced {
                XCTAssertGreaterThan(seconds, 0.9 * Double(stats[0].bytesSent) / pace, "\(stats[0].bytesSent) bytes at \(pace) B/s")
            }
            peaks.append(meters[0].peakBytesPerSecond)
        }
        XCTAssertGreaterThan(peaks[0], 4 * pace, "unpaced: the whole sum at once")
        XCTAssertLessThan(peaks[1], 2.5 * pace, "paced: at most a few frames in any tenth of a second")
    }

    func testThePeakRateIsTheBusiestWindow() {
        var rate = PeakSendRate(windowSeconds: 1)
        rate.record(bytes: 1000, at: 10.05)
        rate.record(bytes: 1000, at: 10.95)
        XCTAssertEqual(rate.peakBytesPerSecond, 2000, "both in one second")
        rate.record(bytes: 1500, at: 12.15)
        XCTAssertEqual(rate.peakBytesPerSecond, 2000, "a second later the first two have left the window")
        rate.record(bytes: 600, at: 12.5)
        XCTAssertEqual(rate.peakBytesPerSecond, 2100)
        rate.record(bytes: 10, at: 500)
        XCTAssertEqual(rate.peakBytesPerSecond, 2100, "a long gap empties the window")
        var steady = PeakSendRate(windowSeconds: 1)
        for k in 0..<50 { steady.record(bytes: 100, at: 0.05 + Double(k) * 0.1) }
        XCTAssertEqual(steady.peakBytesPerSecond, 1000, "a steady 1000 B/s")
    }

    func testExactTailTravelsAsFP32BesideACompressedVector() async throws {
        for (n, length, tail, piece) in [(3, 1000, 6, 128), (4, 37, 8, 5), (2, 10, 10, 4), (3, 7, 0, 2)] {
            var vectors = inputs(n: n, length: length, seed: 9)
            for r in 0..<n {
                for j in 0..<tail { vectors[r][length - tail + j] = j % 2 == 0 ? Float(10_000 + 137 * r + j) : Float(r + 1) * 0.001 }
            }
            let (out, _) = try await runAllReduce(memoryRing(n, pieceValues: piece), vectors, codec: .int4(block: 32)!, exactTail: tail)
            for j in 0..<tail {
                let exact = (0..<n).reduce(Float(0)) { $0 + vectors[$1][length - tail + j] }
                for r in 0..<n { XCTAssertEqual(out[r][length - tail + j], exact, "n \(n) length \(length) tail value \(j)") }
            }
            let head = (0..<(length - tail)).map { i in (0..<n).reduce(Float(0)) { $0 + vectors[$1][i] } }
            let worst = zip(out[0], head).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 0.6, "the head is int4, so only roughly right")
            for r in 1..<n { XCTAssertEqual(out[r], out[0], "bit-identical on every worker") }
        }
    }

    /// The sparse path: every worker's own top-k encoding, decoded and summed in rank order,
    /// exactly, on every worker; an exact tail stays exact.
    func testAllGatherSumAddsEachWorkersEncodingExactly() async throws {
        for (n, length, tail) in [(3, 9000, 4), (4, 4096, 0), (2, 100, 6)] {
            let codec = CodecID.topK(k: 8, bits: 4)!
            var vectors = inputs(n: n, length: length, seed: 21)
            for r in 0..<n { for j in 0..<tail { vectors[r][length - tail + j] = Float(1000 * r + j) } }
            let rings = memoryRing(n, pieceValues: 1 << 18)
            let out = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
                for ring in rings {
                    let input = vectors[ring.rank]
                    group.addTask {
                        var random = LaneRandom(seed: 1)
                        var copy = input
                        _ = try await withHeapBuffer(&copy) {
                            try await ring.allGatherSum($0, codec: codec, exactTail: tail, round: 3, random: &random)
                        }
                        return (ring.rank, copy)
                    }
                }
                var results = [[Float]](repeating: [], count: n)
                for try await (rank, v) in group { results[rank] = v }
                return results
            }
            // Reference: each worker's values through the codec (the tail as fp32), summed in rank order.
            var expected = [Float](repeating: 0, count: length)
            for r in 0..<n {
                var buffer = ByteBuffer()
                var random = LaneRandom(seed: 1)
                let head = Array(vectors[r][..<(length - tail)])
                head.withUnsafeBufferPointer { codec.codec.encode($0, into: &buffer, rounding: .nearest, random: &random) }
                var decoded = [Float](repeating: 0, count: length - tail)
                try decoded.withUnsafeMutableBufferPointer { try codec.codec.decode(buffer, into: $0, accumulate: false) }
                for i in 0..<(length - tail) { expected[i] += decoded[i] }
                for j in 0..<tail { expected[length - tail + j] += vectors[r][length - tail + j] }
            }
            for r in 0..<n { XCTAssertEqual(out[r], expected, "n \(n) length \(length): worker \(r)") }
        }
    }

    func testBroadcastCopiesTheRootsVector() async throws {
        for n in [1, 2, 5] {
            let rings = memoryRing(n, pieceValues: 10)
            let input = inputs(n: n, length: 123, seed: 3)
            try await withThrowingTaskGroup(of: [Float].self) { group in
                for ring in rings {
                    let mine = input[ring.rank]
                    group.addTask {
                        var copy = mine
                        _ = try await withHeapBuffer(&copy) { try await ring.broadcast($0, root: n / 2, round: 1) }
                        return copy
                    }
                }
                for try await result in group { XCTAssertEqual(result, input[n / 2]) }
            }
        }
    }

    func testADroppedLinkFailsTheCollectiveWithTheRoundNotAHang() async throws {
        var rings = memoryRing(3, pieceValues: 10)
        for r in 0..<3 { rings[r].timeout = .seconds(2) }
        (rings[1].next as! MemoryLink).dropAfter(2)
        do {
            _ = try await runAllReduce(rings, inputs(n: 3, length: 300, seed: 4), codec: .fp32)
            XCTFail("all-reduce survived a dropped link")
        } catch let failure as RingFailure {
            // Worker 2 hears rank 1 go, or rank 1 cannot send to rank 2: either way a lost peer, in round 5.
            XCTAssertEqual(failure.kind, .lost, "\(failure)")
            XCTAssertEqual(failure.round, 5, "\(failure)")
            XCTAssertTrue(["rank 1", "rank 2"].contains(failure.peer), "\(failure)")
            XCTAssertTrue("\(failure)".contains("connection dropped"), "\(failure)")
        }
    }

    func testTimeoutNamesPeerAndRound() async throws {
        var rings = memoryRing(2, pieceValues: 10)
        rings[0].timeout = .milliseconds(100)
        var v = [Float](repeating: 1, count: 40)
        var random = LaneRandom(seed: 1)
        do {
            _ = try await withHeapBuffer(&v) { try await rings[0].allReduceSum($0, codec: .fp32, round: 77, random: &random) }
            XCTFail("no timeout")
        } catch let failure as RingFailure {
            XCTAssertEqual(failure.kind, .timedOut)
            XCTAssertEqual(failure.peer, "rank 1")
            XCTAssertEqual(failure.round, 77)
            XCTAssertTrue(failure.detail.contains("reduce-scatter values"), failure.detail)
        }
    }
}
