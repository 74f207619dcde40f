import Basics
import XCTest

final class InterleavedFragmentsTests: XCTestCase {
    /// Fragment f holds exactly the values whose block of 64 is numbered f mod F, in order, in runs that
    /// start where the fragment's own order says; the fragments' sizes add up to the whole.
    func testFragmentsAreTheBlocksOfTheirNumberInOrder() {
        for count in [0, 1, 63, 64, 65, 128, 1000, 64 * 7 + 5, 64 * 12] {
            for fragments in 1...5 {
                let layout = InterleavedFragments(count: count, fragments: fragments)
                var total = 0
                for f in 0..<fragments {
                    let expected = (0..<count).filter { ($0 / 64) % fragments == f }
                    var listed: [Int] = []
                    layout.forEachRun(of: f) { values, offset in
                        XCTAssertEqual(offset, listed.count, "count \(count), fragment \(f) of \(fragments)")
                        listed += values
                    }
                    XCTAssertEqual(listed, expected, "count \(count), fragment \(f) of \(fragments)")
                    XCTAssertEqual(layout.size(of: f), expected.count, "count \(count), fragment \(f) of \(fragments)")
                    total += layout.size(of: f)
                }
                XCTAssertEqual(total, count)
            }
        }
    }

    /// A fragment's copy moves its own values and leaves the others' in place.
    func testACopyMovesOnlyItsFragment() {
        let layout = InterleavedFragments(count: 300, fragments: 3)
        let source = (0..<300).map(Float.init)
        var target = [Float](repeating: -1, count: 300)
        source.withUnsafeBufferPointer { s in target.withUnsafeMutableBufferPointer { layout.copy(1, from: s, to: $0) } }
        XCTAssertEqual(target, (0..<300).map { ($0 / 64) % 3 == 1 ? Float($0) : -1 })
    }

    /// One fragment is the whole vector in one run.
    func testOneFragmentIsTheWholeVector() {
        var runs: [Range<Int>] = []
        InterleavedFragments(count: 1000, fragments: 1).forEachRun(of: 0) { values, _ in runs.append(values) }
        XCTAssertEqual(runs, [0..<1000])
    }
}
