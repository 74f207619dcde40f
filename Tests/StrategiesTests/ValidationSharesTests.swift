import Strategies
import XCTest

/// How validation batches are shared out when workers' speeds differ.
final class ValidationSharesTests: XCTestCase {
    func testBatchesFollowTheWorkEachWorkerDidInConsecutiveRanges() throws {
        // Speeds 1, 0.5, 0.25, 0.25 did 643, 327, 161, 160 steps' tokens in a round.
        let ranges = try XCTUnwrap(DistributedTrainer.proportionalRanges(of: 16, weights: [643, 327, 161, 160]))
        XCTAssertEqual(ranges, [0..<8, 8..<12, 12..<14, 14..<16])
        // Largest remainders: 10 × (1/3 each) gives 3, 3, 3 and one more to the first.
        XCTAssertEqual(DistributedTrainer.proportionalRanges(of: 10, weights: [1, 1, 1]), [0..<4, 4..<7, 7..<10])
        XCTAssertEqual(DistributedTrainer.proportionalRanges(of: 2, weights: [100, 1, 1]), [0..<2, 2..<2, 2..<2],
                       "a worker may get none; the sum and count still add up")
        XCTAssertNil(DistributedTrainer.proportionalRanges(of: 4, weights: [0, 0]))
        XCTAssertNil(DistributedTrainer.proportionalRanges(of: 4, weights: [1, -1, 2]))
        for weights in [[Float](repeating: 1, count: 7), [3, 9, 0.5, 12, 1]] {
            let r = try XCTUnwrap(DistributedTrainer.proportionalRanges(of: 16, weights: weights))
            XCTAssertEqual(r.map(\.count).reduce(0, +), 16)
            XCTAssertEqual(zip(r, r.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, true)
        }
    }
}
