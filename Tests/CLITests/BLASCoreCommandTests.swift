import Foundation
import XCTest

/// The engine replaces a fallback OpenBLAS core (forced here with OPENBLAS_CORETYPE=Prescott, the kernels
/// Debian's OpenBLAS falls back to on CPUs it does not know) and says so; it keeps it only when told to.
final class BLASCoreCommandTests: XCTestCase {
    func testAFallbackCoreIsReplacedAndReported() throws {
        #if arch(x86_64) && os(Linux)
        // The build targets x86-64-v3, so this CPU has AVX2 and FMA: Prescott's SSE3 kernels are a fallback.
        let forced = try runTributary(["devices", "--no-measure"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stderr.contains("OpenBLAS picked Prescott, a fallback on this"), forced.stderr)
        let line = try XCTUnwrap(forced.stdout.split(separator: "\n").first { $0.hasPrefix("OpenBLAS core") })
        XCTAssertFalse(line.contains("Prescott"), String(line))
        XCTAssertFalse(line.contains("fallback"), String(line))

        let kept = try runTributary(["devices", "--no-measure"],
                                    environment: ["OPENBLAS_CORETYPE": "Prescott", "TRIBUTARY_KEEP_BLAS_CORE": "1"])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        XCTAssertTrue(kept.stdout.contains("OpenBLAS core Prescott, a fallback on this"), kept.stdout)
        XCTAssertTrue(kept.stderr.contains("kept because TRIBUTARY_KEEP_BLAS_CORE=1"), kept.stderr)
        #else
        throw XCTSkip("OpenBLAS core types are x86-64 Linux's")
        #endif
    }

    func testThreadsDefaultToTheCoresTheProcessMayUse() throws {
        let taskset = URL(fileURLWithPath: "/usr/bin/taskset")
        guard FileManager.default.isExecutableFile(atPath: taskset.path) else { throw XCTSkip("no taskset here") }
        let pinned = try runProcess(taskset, ["-c", "0", tributaryExecutable.path, "devices", "--no-measure"])
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        XCTAssertTrue(pinned.stdout.contains("usable cores for this process: 1."), pinned.stdout)
    }
}
