import Strategies
import XCTest

final class ComputeThrottleTests: XCTestCase {
    /// Busy work of a fixed CPU cost.
    func spin(_ n: Int) -> Double {
        var x = 0.0
        for i in 0..<n { x += Double(i % 7) * 1e-9 }
        return x
    }

    func testQuarterSpeedTakesAboutFourTimesAsLong() async throws {
        let n = 100_000_000
        let (_, full) = try await ComputeThrottle(speed: 1).run { spin(n) }
        let (_, quarter) = try await ComputeThrottle(speed: 0.25).run { spin(n) }
        XCTAssertGreaterThan(quarter / full, 3.0)
        XCTAssertLessThan(quarter / full, 5.5)
    }
}
