import Basics
import Foundation
import XCTest

final class UsableCoresTests: XCTestCase {
    func testCgroupQuotaRoundsUpToWholeCores() {
        XCTAssertEqual(UsableCores.quotaCores(cpuMax: "150000 100000\n"), 2)
        XCTAssertEqual(UsableCores.quotaCores(cpuMax: "50000 100000"), 1)
        XCTAssertEqual(UsableCores.quotaCores(cpuMax: "400000 100000"), 4)
        XCTAssertNil(UsableCores.quotaCores(cpuMax: "max 100000"), "no quota")
        XCTAssertNil(UsableCores.quotaCores(cpuMax: "-1 100000"), "cgroup v1's no quota")
        XCTAssertNil(UsableCores.quotaCores(cpuMax: "garbage"))
    }

    func testAffinityMasksCountTheirBits() {
        XCTAssertEqual(UsableCores.allowedCount(mask: "3"), 2)
        XCTAssertEqual(UsableCores.allowedCount(mask: "\tff,00000001\n"), 9)
        XCTAssertNil(UsableCores.allowedCount(mask: "0"))
        XCTAssertNil(UsableCores.allowedCount(mask: "xyz"))
    }

    func testNeverMoreThanTheMachineHas() {
        XCTAssertGreaterThanOrEqual(UsableCores.count, 1)
        XCTAssertLessThanOrEqual(UsableCores.count, ProcessInfo.processInfo.activeProcessorCount)
    }
}
