import Basics
import XCTest

final class FNV1aTests: XCTestCase {
    /// The published FNV-1a 64 test vectors: `add` is the standard hash (the Python layout hash matches it).
    func testAddGivesTheStandardFNV1a64() {
        func hash(_ text: String) -> UInt64 { var h = FNV1a(); h.add(text); return h.value }
        XCTAssertEqual(hash(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(hash("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(hash("foobar"), 0x8594_4171_f739_67e8)
    }

    private func wide(_ values: [Float]) -> UInt64 {
        var h = FNV1a()
        values.withUnsafeBytes { h.addWide($0) }
        return h.value
    }

    /// A change of any one value, in any lane or in the bytes after the last whole 32, changes the hash;
    /// so does moving a value to another place.
    func testAddWideSeesEveryValueAndItsPlace() {
        let values = (0..<1003).map { Float($0) * 0.37 - 11 }
        let base = wide(values)
        XCTAssertEqual(wide(values), base)
        var seen: Set<UInt64> = [base]
        for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 500, 999, 1000, 1001, 1002] {
            var changed = values
            changed[i] = changed[i].nextUp
            XCTAssertTrue(seen.insert(wide(changed)).inserted, "value \(i)")
        }
        for (i, j, what) in [(0, 1, "two values of one word"), (0, 8, "two words of one lane"), (0, 2, "words of two lanes")] {
            var swapped = values
            swapped.swapAt(i, j)
            XCTAssertNotEqual(wide(swapped), base, what)
        }
        XCTAssertNotEqual(wide(Array(values.dropLast())), base, "one value fewer")
    }
}
