import Foundation
import ModelCore
import Training
import XCTest

final class DataTests: XCTestCase {
    func testUniformChainHasEntropyLogV() {
        // With all mass smoothed uniformly every row is uniform: entropy rate is exactly ln V.
        let source = MarkovSource(vocabulary: 10, branching: 3, smoothing: 1, seed: 5)
        XCTAssertEqual(source.entropyRate, log(10), accuracy: 1e-12)
        for p in source.stationary { XCTAssertEqual(p, 0.1, accuracy: 1e-12) }
    }

    func testChainIsAValidStochasticMatrixWithStationaryDistribution() {
        let v = 17
        let source = MarkovSource(vocabulary: v, branching: 4, smoothing: 0.05, seed: 9)
        for i in 0..<v {
            XCTAssertEqual(source.transition[(i * v)..<((i + 1) * v)].reduce(0, +), 1, accuracy: 1e-12)
        }
        for j in 0..<v {
            let next = (0..<v).reduce(0.0) { $0 + source.stationary[$1] * source.transition[$1 * v + j] }
            XCTAssertEqual(next, source.stationary[j], accuracy: 1e-12)
        }
        XCTAssertLessThan(source.entropyRate, log(Double(v)))
    }

    func testSampledTransitionsMatchTheTable() {
        let v = 5
        let source = MarkovSource(vocabulary: v, branching: 2, smoothing: 0.1, seed: 3)
        let tokens = source.generate(count: 400_000, seed: 11)
        var counts = [Double](repeating: 0, count: v * v)
        for (a, b) in zip(tokens, tokens.dropFirst()) { counts[Int(a) * v + Int(b)] += 1 }
        for i in 0..<v {
            let row = counts[(i * v)..<((i + 1) * v)].reduce(0, +)
            for j in 0..<v { XCTAssertEqual(counts[i * v + j] / row, source.transition[i * v + j], accuracy: 0.01) }
        }
        // Empirical cross-entropy of the samples under the true table approaches the entropy rate.
        let nll = zip(tokens, tokens.dropFirst()).reduce(0.0) { $0 - log(source.transition[Int($1.0) * v + Int($1.1)]) }
        XCTAssertEqual(nll / Double(tokens.count - 1), source.entropyRate, accuracy: 0.01)
    }

    func testTokenStreamShiftsTargetsAndWraps() {
        var stream = TokenStream(tokens: (0..<10).map(Int32.init))
        var inputs = [Int32](repeating: 0, count: 4), targets = inputs
        func next() {
            inputs.withUnsafeMutableBufferPointer { i in targets.withUnsafeMutableBufferPointer { stream.nextBatch(inputs: i, targets: $0) } }
        }
        next()
        XCTAssertEqual(inputs, [0, 1, 2, 3]); XCTAssertEqual(targets, [1, 2, 3, 4])
        next()
        XCTAssertEqual(inputs, [4, 5, 6, 7]); XCTAssertEqual(targets, [5, 6, 7, 8])
        next() // 8, 9 left: not enough for inputs and targets, so it wraps
        XCTAssertEqual(inputs, [0, 1, 2, 3])
        XCTAssertEqual(stream.cursor, 4)
        stream.seek(to: 13)
        XCTAssertEqual(stream.cursor, 3)
    }

    func testShuffledWindowsReadEveryWindowOncePerPassInASeededOrder() {
        let tokens = (0..<101).map(Int32.init) // 25 windows of 4 (the last token only as a target)
        func pass(seed: UInt64) -> [Int32] {
            var stream = TokenStream(tokens: tokens, shuffledWindows: 4, seed: seed)
            var inputs = [Int32](repeating: 0, count: 8), targets = inputs, starts: [Int32] = []
            for _ in 0..<12 {
                inputs.withUnsafeMutableBufferPointer { i in targets.withUnsafeMutableBufferPointer { stream.nextBatch(inputs: i, targets: $0) } }
                for row in 0..<2 {
                    let start = inputs[row * 4]
                    XCTAssertEqual(start % 4, 0, "rows start at window boundaries")
                    XCTAssertEqual(Array(inputs[(row * 4)..<(row * 4 + 4)]), (0..<4).map { start + $0 })
                    XCTAssertEqual(Array(targets[(row * 4)..<(row * 4 + 4)]), (1...4).map { start + $0 })
                    starts.append(start)
                }
            }
            XCTAssertEqual(stream.cursor, 96)
            return starts
        }
        let a = pass(seed: 1)
        XCTAssertEqual(Set(a).count, 24, "12 batches of 2 rows: 24 of the 25 windows, none twice")
        XCTAssertEqual(a, pass(seed: 1), "the same seed, the same order")
        XCTAssertNotEqual(a, pass(seed: 2))
        XCTAssertNotEqual(a, a.sorted(), "not the file order")

        var stream = TokenStream(tokens: tokens, shuffledWindows: 4, seed: 1)
        stream.seek(to: 103) // 103 mod 100, down to a window boundary
        XCTAssertEqual(stream.cursor, 0)
        stream.seek(to: 50)
        XCTAssertEqual(stream.cursor, 48)
        var inputs = [Int32](repeating: 0, count: 8), targets = inputs
        inputs.withUnsafeMutableBufferPointer { i in targets.withUnsafeMutableBufferPointer { stream.nextBatch(inputs: i, targets: $0) } }
        XCTAssertEqual([inputs[0], inputs[4]], Array(a[12..<14]), "a seek goes on from that place in the order")
        stream.seek(to: 96)
        inputs.withUnsafeMutableBufferPointer { i in targets.withUnsafeMutableBufferPointer { stream.nextBatch(inputs: i, targets: $0) } }
        XCTAssertEqual([inputs[0], inputs[4]], Array(a[0..<2]), "one window left is less than a batch: it wraps")
    }
}
