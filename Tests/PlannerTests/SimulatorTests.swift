import Dispatch
import Foundation
import Planner
import XCTest

final class SimulatorTests: XCTestCase {
    let catalogue = try! DeviceCatalogue.shipped()

    func exampleCluster(_ name: String) throws -> ClusterSpec {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../configs/clusters/\(name).yaml").standardizedFileURL
        return try ClusterSpec.load(yaml: try String(contentsOf: url, encoding: .utf8), source: name)
    }

    /// With nothing going wrong, the event replay and the analytic model agree within 5%.
    func testSimulatorAgreesWithTheAnalyticModel() throws {
        for (cluster, model, batch) in [("three-datacenters", "13b", 1024), ("eight-sites-consumer", "1.3b", 1024), ("v100-256", "6.7b", 1024)] {
            let spec = try exampleCluster(cluster)
            let plan = try Planner.plan(cluster: spec, catalogue: catalogue, model: try ModelSpec.named(model),
                                        training: TrainingSpec(globalBatchSequences: batch)).chosen
            let interval = plan.sync.interval
            let report = Simulator.run(plan: plan, cluster: spec, steps: max(2, interval))
            let error = report.meanStepSeconds / plan.stepSeconds - 1
            print(String(format: "%@ %@: simulated %.3f s, analytic %.3f s (%+.2f%%)", cluster, model, report.meanStepSeconds, plan.stepSeconds, 100 * error))
            XCTAssertLessThan(abs(error), 0.05, cluster)
        }
    }

    func testStragglersAndFailuresSlowStepsDown() throws {
        let spec = try exampleCluster("v100-256")
        let plan = try Planner.plan(cluster: spec, catalogue: catalogue, model: try ModelSpec.named("6.7b"),
                                    training: TrainingSpec(globalBatchSequences: 1024)).chosen
        let site = plan.sites[0].site
        let clean = Simulator.run(plan: plan, cluster: spec, steps: 4)
        let slow = Simulator.run(plan: plan, cluster: spec, steps: 4, stragglers: [Straggler(site: site, replica: 0, stage: 0, slowdown: 2, fromStep: 2)])
        XCTAssertEqual(slow.stepSeconds[0], clean.stepSeconds[0], accuracy: 1e-9)
        XCTAssertGreaterThan(slow.stepSeconds[3], clean.stepSeconds[3] * 1.2, "one device at half speed holds its whole site back")
        guard plan.sites[0].layout.dataParallel > 1 else { return }
        let failed = Simulator.run(plan: plan, cluster: spec, steps: 4, failures: [Failure(site: site, replica: 1, atStep: 1)])
        XCTAssertGreaterThan(failed.stepSeconds[2], clean.stepSeconds[2], "the remaining replicas carry the lost one's sequences")
        XCTAssertEqual(failed.notes.count, 1)
    }

    func testTenThousandDevicesOnEightSitesInUnderAMinute() throws {
        let sites = (0..<8).map { SiteSpec(name: "site\($0)", device: ["H100-SXM", "A100-80GB", "H20", "Ascend-910B"][$0 % 4], count: 1250) }
        let spec = ClusterSpec(name: "ten-thousand", sites: sites, links: InterSiteLinks(default: SiteLink(gbps: 100, latencyMs: 20)))
        let start = DispatchTime.now().uptimeNanoseconds
        let plan = try Planner.plan(cluster: spec, catalogue: catalogue, model: try ModelSpec.named("175b"),
                                    training: TrainingSpec(globalBatchSequences: 4096)).chosen
        let report = Simulator.run(plan: plan, cluster: spec, steps: 3, stragglers: [Straggler(site: "site0", replica: 3, stage: 1, slowdown: 1.5)])
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "10,000 devices: planned and simulated 3 steps (%d events) in %.2f s", report.events, seconds))
        XCTAssertEqual(spec.deviceCount, 10_000)
        XCTAssertLessThan(seconds, 60)
    }
}
