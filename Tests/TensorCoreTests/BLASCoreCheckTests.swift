import TensorCore
import XCTest

final class BLASCoreCheckTests: XCTestCase {
    let sapphireRapids = BLASCoreCheck.CPU(avx: true, avx2: true, fma: true, avx512: true, avx512BF16: true)
    let skylakeServer = BLASCoreCheck.CPU(avx: true, avx2: true, fma: true, avx512: true)
    let zen3 = BLASCoreCheck.CPU(avx: true, avx2: true, fma: true, amd: true)
    let ivyBridge = BLASCoreCheck.CPU(avx: true)

    func testPrescottOnAnAVX512CPUIsAFallbackReplacedByTheWidestKernels() {
        let bf16 = BLASCoreCheck(active: "Prescott", cpu: sapphireRapids)
        XCTAssertTrue(bf16.isFallback)
        XCTAssertEqual(bf16.replacement, "Cooperlake")
        XCTAssertTrue(bf16.summary.contains("fallback on this AVX-512 CPU"), bf16.summary)
        XCTAssertEqual(BLASCoreCheck(active: "Nehalem", cpu: skylakeServer).replacement, "SkylakeX")
        XCTAssertEqual(BLASCoreCheck(active: "Haswell", cpu: skylakeServer).replacement, "SkylakeX")
    }

    func testVendorAndNarrowerCPUsGetTheirOwnKernels() {
        XCTAssertEqual(BLASCoreCheck(active: "Prescott", cpu: zen3).replacement, "Zen")
        XCTAssertEqual(BLASCoreCheck(active: "Core2", cpu: ivyBridge).replacement, "Sandybridge")
        XCTAssertNil(BLASCoreCheck(active: "Prescott", cpu: BLASCoreCheck.CPU()).replacement, "an SSE CPU has nothing better")
    }

    func testAMatchingOrUnknownCoreIsLeftAlone() {
        for (core, cpu) in [("Cooperlake", sapphireRapids), ("SkylakeX", sapphireRapids), ("Zen", zen3),
                            ("Haswell", zen3), ("SapphireRapidsX", sapphireRapids), ("NeoverseN1", skylakeServer)] {
            let check = BLASCoreCheck(active: core, cpu: cpu)
            XCTAssertFalse(check.isFallback, core)
            XCTAssertNil(check.replacement, core)
        }
    }

    func testThisMachineIsReadFromCPUID() {
        #if arch(x86_64)
        // The build targets x86-64-v3: whatever runs these tests has AVX2 and FMA.
        XCTAssertGreaterThanOrEqual(BLASCoreCheck.CPU.current.tier, .avx2)
        XCTAssertFalse(BLASCoreCheck.current().active.isEmpty)
        #endif
    }
}
