import Basics
import XCTest

/// The one largest-remainder splitter: validation batches between workers, a global batch between sites.
final class LargestRemainderTests: XCTestCase {
    func testBatchesFollowTheWorkEachWorkerDidInConsecutiveRanges() throws {
        // Speeds 1, 0.5, 0.25, 0.25 did 643, 327, 161, 160 steps' tokens in a round.
        let ranges = try XCTUnwrap(proportionalRanges(of: 16, weights: [643, 327, 161, 160]))
        XCTAssertEqual(ranges, [0..<8, 8..<12, 12..<14, 14..<16])
        // Largest remainders: 10 × (1/3 each) gives 3, 3, 3 and one more to the first.
        XCTAssertEqual(proportionalRanges(of: 10, weights: [1, 1, 1]), [0..<4, 4..<7, 7..<10])
        XCTAssertEqual(proportionalRanges(of: 2, weights: [100, 1, 1]), [0..<2, 2..<2, 2..<2],
                       "a worker may get none; the sum and count still add up")
        XCTAssertNil(proportionalRanges(of: 4, weights: [0, 0]))
        XCTAssertNil(proportionalRanges(of: 4, weights: [1, -1, 2]))
        XCTAssertNil(proportionalRanges(of: 4, weights: [1, .nan]))
        XCTAssertNil(proportionalRanges(of: 4, weights: [1, .infinity]))
        for weights in [[Double](repeating: 1, count: 7), [3, 9, 0.5, 12, 1]] {
            let r = try XCTUnwrap(proportionalRanges(of: 16, weights: weights))
            XCTAssertEqual(r.map(\.count).reduce(0, +), 16)
            XCTAssertEqual(zip(r, r.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, true)
        }
    }

    func testAMinimumShareIsHonouredAndTheRestStillGoesByRemainders() throws {
        // 10 by 1:1:100 gives 0, 0, 9.80: with a minimum of 1 each, the small two take 1 and the
        // large one its floor, 9 — 11 in all: a minimum may exceed the total, never go below it.
        XCTAssertEqual(largestRemainderShares(of: 10, weights: [1, 1, 100], minimum: 1), [1, 1, 9])
        XCTAssertEqual(largestRemainderShares(of: 12, weights: [1, 2, 3], minimum: 1), [2, 4, 6])
        // 7 by 1:1:1 is 2.33 each: the first takes the one left over.
        XCTAssertEqual(largestRemainderShares(of: 7, weights: [1, 1, 1], minimum: 1), [3, 2, 2])
        XCTAssertEqual(largestRemainderShares(of: 0, weights: [1, 1]), [0, 0])
    }
}
