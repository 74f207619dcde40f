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
}
