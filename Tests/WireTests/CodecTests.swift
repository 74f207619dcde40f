import NIOCore
import Wire
import XCTest

final class CodecTests: XCTestCase {
    let lengths = [0, 1, 15, 16, 17, 31, 97, 4095, 4096, 4097, 10_007]
    var allCodecs: [any VectorCodec] {
        [Float32Codec(), Float16Codec(), BFloat16Codec(),
         BlockQuantizedCodec(bits: 8, block: 4096), BlockQuantizedCodec(bits: 8, block: 32),
         BlockQuantizedCodec(bits: 4, block: 4096), BlockQuantizedCodec(bits: 4, block: 256)]
    }

    func values(_ n: Int, seed: UInt64) -> [Float] {
        var r = LaneRandom(seed: seed)
        var out: [Float] = []
        while out.count < n {
            let u = r.next(), v = r.next()
            // Mixed magnitudes, signs and a few exact zeros.
            for i in 0..<16 { out.append((u[i] - 0.5) * pow(10, 3 * v[i] - 2) * (i == 5 ? 0 : 1)) }
        }
        return Array(out.prefix(n))
    }

    func roundTrip(_ codec: any VectorCodec, _ x: [Float], rounding: RoundingMode, seed: UInt64 = 1) throws -> [Float] {
        var buffer = ByteBuffer()
        var random = LaneRandom(seed: seed)
        x.withUnsafeBufferPointer { codec.encode($0, into: &buffer, rounding: rounding, random: &random) }
        XCTAssertEqual(buffer.readableBytes, codec.encodedByteCount(count: x.count), "\(codec.name) size for \(x.count)")
        var out = [Float](repeating: .nan, count: x.count)
        try out.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: false) }
        return out
    }

    func assertWithinBound(_ codec: any VectorCodec, _ x: [Float], _ y: [Float], rounding: RoundingMode, file: StaticString = #filePath, line: UInt = #line) {
        let bound = codec.errorBound(rounding: rounding)
        let block = bound.blockSize == 0 ? max(x.count, 1) : bound.blockSize
        for start in stride(from: 0, to: x.count, by: block) {
            let range = start..<min(x.count, start + block)
            let blockMax = x[range].map(abs).max() ?? 0
            for i in range {
                XCTAssertLessThanOrEqual(abs(y[i] - x[i]), bound.limit(value: x[i], blockMax: blockMax),
                                         "\(codec.name) \(rounding) at \(i): \(x[i]) -> \(y[i])", file: file, line: line)
            }
        }
    }

    func testEveryCodecStaysWithinItsStatedBound() throws {
        for codec in allCodecs {
            for n in lengths {
                let x = values(n, seed: UInt64(n))
                for rounding in [RoundingMode.nearest, .stochastic] {
                    assertWithinBound(codec, x, try roundTrip(codec, x, rounding: rounding), rounding: rounding)
                }
            }
        }
        XCTAssertEqual(try roundTrip(Float32Codec(), [1.5, -0.0, .infinity], rounding: .nearest), [1.5, -0.0, .infinity])
    }

    func testDecodeAccumulates() throws {
        for codec in allCodecs + [TopKCodec(k: 64, bits: 4)] {
            let x = values(5000, seed: 9)
            var buffer = ByteBuffer()
            var random = LaneRandom(seed: 2)
            x.withUnsafeBufferPointer { codec.encode($0, into: &buffer, rounding: .nearest, random: &random) }
            var once = [Float](repeating: 0, count: x.count)
            try once.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: false) }
            var sum = [Float](repeating: 1, count: x.count)
            try sum.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: true) }
            for i in 0..<x.count { XCTAssertEqual(sum[i], 1 + once[i], accuracy: 1e-5 * max(1, abs(once[i])), codec.name) }
        }
    }

    func testStochasticRoundingIsUnbiased() throws {
        let x: [Float] = (0..<64).map { Float($0) / 64 - 0.37 } + [1] // 1 fixes the block scale
        for codec in [BlockQuantizedCodec(bits: 4, block: 4096), BlockQuantizedCodec(bits: 8, block: 4096)] as [any VectorCodec] {
            var mean = [Double](repeating: 0, count: x.count)
            let trials = 4000
            for t in 0..<trials {
                let y = try roundTrip(codec, x, rounding: .stochastic, seed: UInt64(t + 1))
                for i in 0..<x.count { mean[i] += Double(y[i]) / Double(trials) }
            }
            let step = 1 / Double(codec.name.hasPrefix("int4") ? 7 : 127)
            for i in 0..<x.count { XCTAssertEqual(mean[i], Double(x[i]), accuracy: 4 * step / Double(trials).squareRoot(), "\(codec.name) \(i)") }
        }
    }

    func testTopKKeepsTheLargestAndQuantizesThem() throws {
        for bits in [2, 4, 8] {
            let codec = TopKCodec(k: 64, bits: bits)
            for n in [1, 63, 64, 65, 4096, 9000] {
                let x = values(n, seed: UInt64(n + bits))
                let y = try roundTrip(codec, x, rounding: .nearest)
                for start in stride(from: 0, to: n, by: 4096) {
                    let range = start..<min(n, start + 4096)
                    let kept = range.filter { y[$0] != 0 }
                    let blockMax = x[range].map(abs).max()!
                    XCTAssertLessThanOrEqual(kept.count, min(64, range.count))
                    let smallestKept = kept.map { abs(x[$0]) }.min() ?? 0
                    for i in range where y[i] == 0 && x[i] != 0 { XCTAssertLessThanOrEqual(abs(x[i]), smallestKept, "dropped a larger value") }
                    for i in kept { XCTAssertLessThanOrEqual(abs(y[i] - x[i]), codec.keptValueError(rounding: .nearest) * blockMax) }
                }
            }
        }
        XCTAssertEqual(TopKCodec(k: 64, bits: 2).encodedByteCount(count: 4096), 4 + 96 + 16)
    }

    func testErrorFeedbackCarriesWhatWasDropped() throws {
        let n = 8192
        let codec = TopKCodec(k: 64, bits: 2)
        let feedback = ErrorFeedback(count: n, beta: 1)
        var random = LaneRandom(seed: 4)
        var totalSent = [Double](repeating: 0, count: n), totalDelta = [Double](repeating: 0, count: n)
        var decoded = [Float](repeating: 0, count: n)
        let rounds = 300
        for round in 0..<rounds {
            let delta = values(n, seed: UInt64(1000 + round)).map { $0 * 0.01 + 0.001 } // a steady drift plus noise
            var buffer = ByteBuffer()
            try delta.withUnsafeBufferPointer { try feedback.encode($0, codec: codec, rounding: .nearest, random: &random, into: &buffer) }
            try decoded.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: false) }
            for i in 0..<n { totalSent[i] += Double(decoded[i]); totalDelta[i] += Double(delta[i]) }
        }
        // Sum sent + residual = sum of deltas (β = 1), and the residual stays bounded, so the
        // average per-round error shrinks as rounds grow.
        var worstIdentity = 0.0, worstResidual: Float = 0
        for i in 0..<n {
            worstIdentity = max(worstIdentity, abs(totalSent[i] + Double(feedback.residual[i]) - totalDelta[i]))
            worstResidual = max(worstResidual, abs(feedback.residual[i]))
        }
        XCTAssertLessThan(worstIdentity, 1e-3)
        let drift = totalDelta.map(abs).max()!
        XCTAssertLessThan(Double(worstResidual), drift * 0.2, "residual \(worstResidual) vs total \(drift)")
        // Without feedback, top-k would have sent almost nothing of the drift.
        let sentMass = totalSent.reduce(0, +), deltaMass = totalDelta.reduce(0, +)
        XCTAssertEqual(sentMass / deltaMass, 1, accuracy: 0.2)
    }

    /// A fragment's error feedback is the whole vector's on that fragment's values alone (the blocks of 64
    /// numbered f mod F): the same values sent, the same residual there, and the rest of the residual untouched.
    func testErrorFeedbackOnAFragmentServesOnlyItsValues() throws {
        let n = 1000, fragments = 3
        let codec = BlockQuantizedCodec(bits: 4, block: 32)
        let whole = ErrorFeedback(count: n)
        var random = LaneRandom(seed: 7)
        let earlier = values(n, seed: 11)
        var sent = earlier
        try sent.withUnsafeMutableBufferPointer { try whole.compress($0, codec: codec, rounding: .nearest, random: &random) }
        let before = whole.residual
        for f in 0..<fragments {
            let coordinates = (0..<n).filter { ($0 / 64) % fragments == f }
            let delta = values(coordinates.count, seed: UInt64(20 + f))
            let alone = ErrorFeedback(count: coordinates.count)
            XCTAssertTrue(alone.restore(residual: coordinates.map { before[$0] }))
            var viaAlone = delta, viaWhole = delta
            try viaAlone.withUnsafeMutableBufferPointer { try alone.compress($0, codec: codec, rounding: .nearest, random: &random) }
            let residual = whole.residual
            try viaWhole.withUnsafeMutableBufferPointer {
                try whole.compress($0, fragment: f, of: fragments, codec: codec, rounding: .nearest, random: &random)
            }
            XCTAssertEqual(viaWhole, viaAlone, "fragment \(f): what is sent")
            XCTAssertEqual(coordinates.map { whole.residual[$0] }, alone.residual, "fragment \(f): its residual")
            let others = (0..<n).filter { ($0 / 64) % fragments != f }
            XCTAssertEqual(others.map { whole.residual[$0] }, others.map { residual[$0] }, "fragment \(f): the rest waits")
        }
    }

    func testCodecIDsRoundTripAndParse() {
        var valid = 0
        for raw in 0...255 {
            guard let id = CodecID(rawValue: UInt8(raw)) else { continue }
            valid += 1
            XCTAssertEqual(id.codec.id, id, "raw 0x\(String(raw, radix: 16))")
            XCTAssertEqual(CodecID(name: id.codec.name.replacingOccurrences(of: "of4096", with: "").replacingOccurrences(of: "top", with: "topk")), id)
        }
        XCTAssertEqual(valid, 3 + 16 + 16 + 8 * 7)
        XCTAssertEqual(CodecID(name: "int8"), .int8(block: 4096))
        XCTAssertEqual(CodecID(name: "topk"), .topK(k: 64, bits: 2))
        XCTAssertEqual(CodecID(name: "topk128/8bit"), .topK(k: 128, bits: 8))
        for bad in ["int16", "int8/100", "topk3", "topk64/9bit", "fp32/2", ""] { XCTAssertNil(CodecID(name: bad), bad) }
        XCTAssertEqual(Float32Codec().bytesPerValue, 4)
        XCTAssertEqual(BlockQuantizedCodec(bits: 8, block: 4096).bytesPerValue, 1 + 4.0 / 4096)
        XCTAssertEqual(BlockQuantizedCodec(bits: 4, block: 4096).bytesPerValue, 0.5 + 4.0 / 4096)
    }

    func testCorruptTopKPayloadIsAnError() throws {
        let codec = TopKCodec(k: 8, bits: 2)
        var buffer = ByteBuffer()
        var random = LaneRandom(seed: 1)
        let x = values(100, seed: 3)
        x.withUnsafeBufferPointer { codec.encode($0, into: &buffer, rounding: .nearest, random: &random) }
        buffer.setInteger(UInt8(0xFF), at: 4) // first index byte: 0xFF.. > 100
        var out = [Float](repeating: 0, count: 100)
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try codec.decode(buffer, into: $0, accumulate: true) })
        var short = buffer.getSlice(at: 0, length: buffer.readableBytes - 1)!
        short.moveReaderIndex(to: 0)
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try codec.decode(short, into: $0, accumulate: true) })
    }
}
