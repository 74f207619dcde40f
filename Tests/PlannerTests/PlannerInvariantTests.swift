import Dispatch
import Planner
import XCTest

/// Properties every plan must have, over generated clusters.
final class PlannerInvariantTests: XCTestCase {
    let catalogue = try! DeviceCatalogue.shipped()

    /// A reproducible generator of small heterogeneous clusters.
    struct Generator {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
    }

    func randomCluster(_ g: inout Generator) -> ClusterSpec {
        let devices = ["A100-80GB", "H20", "Ascend-910B", "V100-32GB", "RTX-4090", "L40S"]
        let siteCount = 1 + g.next(3)
        let sites = (0..<siteCount).map { i in
            SiteSpec(name: "s\(i)", device: devices[g.next(devices.count)], count: 8 * (1 + g.next(4)))
        }
        return ClusterSpec(name: "generated", sites: sites,
                           links: InterSiteLinks(default: SiteLink(gbps: [1, 10, 100][g.next(3)], latencyMs: Double(5 + g.next(40)))))
    }

    func model(_ g: inout Generator) -> ModelSpec {
        [ModelSpec.presets[1], ModelSpec.presets[3], ModelSpec.presets[5], ModelSpec.presets[6]][g.next(4)]
    }

    func testEveryLayerOnceNoDeviceOverMemoryAndSameInputsSamePlan() throws {
        var g = Generator(state: 7)
        for _ in 0..<25 {
            let cluster = randomCluster(&g)
            let m = model(&g)
            let training = TrainingSpec(globalBatchSequences: 256 << g.next(3))
            let a = try Planner.plan(cluster: cluster, catalogue: catalogue, model: m, training: training)
            let b = try Planner.plan(cluster: cluster, catalogue: catalogue, model: m, training: training)
            XCTAssertEqual(a, b, "same inputs, same plan")
            XCTAssertEqual(a.chosen.sites.reduce(0) { $0 + $1.sequencesPerStep }, training.globalBatchSequences, "the batch is split exactly")
            for s in a.chosen.sites {
                let l = s.layout
                // Every layer sits on exactly one stage, and no stage is empty.
                let stages = l.layersPerStage(layers: m.layers)
                XCTAssertEqual(stages.reduce(0, +), m.layers)
                XCTAssertTrue(stages.allSatisfy { $0 >= 1 }, "\(l): an empty stage")
                XCTAssertLessThanOrEqual(l.devices, s.devicesAvailable)
                if a.chosen.fits {
                    XCTAssertLessThanOrEqual(s.cost.memoryBytes / 1e9, s.memoryCapacityGB + 1e-9, "\(s.site) over its memory")
                }
            }
        }
    }

    /// "Predicted time" is time to the same loss: step time × the sync's token premium.
    func testFasterLinksAndMoreDevicesNeverSlowAPlanDown() throws {
        var g = Generator(state: 99)
        for _ in 0..<20 {
            var cluster = randomCluster(&g)
            let m = model(&g)
            let training = TrainingSpec(globalBatchSequences: 512)
            let base = try Planner.plan(cluster: cluster, catalogue: catalogue, model: m, training: training).chosen
            guard base.fits else { continue }
            var faster = cluster
            faster.links?.default.gbps *= 4
            let withFaster = try Planner.plan(cluster: faster, catalogue: catalogue, model: m, training: training).chosen
            XCTAssertLessThanOrEqual(withFaster.effectiveStepSeconds, base.effectiveStepSeconds * (1 + 1e-9), "faster links: \(cluster.sites)")
            cluster.sites[g.next(cluster.sites.count)].count += 8
            let bigger = try Planner.plan(cluster: cluster, catalogue: catalogue, model: m, training: training).chosen
            XCTAssertLessThanOrEqual(bigger.effectiveStepSeconds, base.effectiveStepSeconds * (1 + 1e-9), "more devices: \(cluster.sites)")
        }
    }

    func testSixtyFourDevicesOnEightSitesPlansInUnderFiveSeconds() throws {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../configs/clusters/eight-sites-consumer.yaml").standardizedFileURL, encoding: .utf8)
        let cluster = try ClusterSpec.load(yaml: text, source: "eight-sites-consumer.yaml")
        XCTAssertEqual(cluster.deviceCount, 64)
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try Planner.plan(cluster: cluster, catalogue: catalogue, model: try ModelSpec.named("1.3b"),
                                      training: TrainingSpec(globalBatchSequences: 1024))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertLessThan(seconds, 5)
        XCTAssertTrue(result.chosen.fits)
        XCTAssertGreaterThan(result.chosen.sync.interval, 1, "1 Gbit/s between sites calls for DiLoCo")
    }

    /// An unknown device names the site and the file's line, and suggests devices of its kind.
    func testUnknownDeviceNamesTheSiteTheLineAndDevicesOfItsKind() throws {
        let yaml = "sites:\n  - {name: office, device: A100-80GB, count: 8}\n  - name: home\n    device: RTX-2070\n    count: 2\nlinks:\n  default: {gbps: 1, latencyMs: 20}\n"
        let cluster = try ClusterSpec.load(yaml: yaml, source: "c.yaml")
        XCTAssertThrowsError(try cluster.checkDevices(in: catalogue, yaml: yaml, source: "c.yaml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("c.yaml:4"), text)
            XCTAssertTrue(text.contains("site 'home'"), text)
            let suggestions = text.components(separatedBy: "closest: ").last!.components(separatedBy: " (").first!
            XCTAssertEqual(suggestions.components(separatedBy: ", ").filter { $0.hasPrefix("RTX-") }.count, 3, text)
        }
        // The same without the file: the planner names the site's field.
        XCTAssertThrowsError(try Planner.plan(cluster: cluster, catalogue: catalogue, model: try ModelSpec.named("1.3b"),
                                              training: TrainingSpec(globalBatchSequences: 8))) { error in
            XCTAssertTrue("\(error)".contains("sites.1.device"), "\(error)")
        }
    }

    func testBadInputSaysWhatAndWhere() throws {
        XCTAssertThrowsError(try catalogue.device(named: "A100-90GB")) { error in
            XCTAssertTrue("\(error)".contains("A100-80GB"), "\(error)")
        }
        let yaml = """
            name: broken
            sites:
              - name: a
                device: H20
                count: 8
              - name: b
                device: H20
                count: -4
            links:
              default: {gbps: 10, latencyMs: 5}
            """
        XCTAssertThrowsError(try ClusterSpec.load(yaml: yaml, source: "c.yaml")) { error in
            XCTAssertTrue("\(error)".contains("sites.1.count"), "\(error)")
            XCTAssertTrue("\(error)".contains("c.yaml:8"), "\(error)")
        }
        let typo = "sites:\n  - {name: a, device: H20, count: 8, devicesPerNod: 4}\n"
        XCTAssertThrowsError(try ClusterSpec.load(yaml: typo, source: "t.yaml")) { error in
            XCTAssertTrue("\(error)".contains("devicesPerNode"), "\(error)")
            XCTAssertTrue("\(error)".contains("t.yaml:2"), "\(error)")
        }
        let badLink = "sites:\n  - {name: a, device: H20, count: 8}\n  - {name: b, device: H20, count: 8}\nlinks:\n  default: {gbps: 1, latencyMs: 5}\n  between:\n    - {sites: [a, c], gbps: 1, latencyMs: 5}\n"
        XCTAssertThrowsError(try ClusterSpec.load(yaml: badLink, source: "l.yaml")) { error in
            XCTAssertTrue("\(error)".contains("no site named 'c'"), "\(error)")
        }
        // A cluster that cannot hold the model: the plan says it does not fit and by how much.
        let small = ClusterSpec(name: "small", sites: [SiteSpec(name: "a", device: "RTX-4090", count: 2)])
        let plan = try Planner.plan(cluster: small, catalogue: catalogue, model: try ModelSpec.named("70b"),
                                    training: TrainingSpec(globalBatchSequences: 64)).chosen
        XCTAssertFalse(plan.fits)
        XCTAssertGreaterThan(plan.sites[0].memoryPerDeviceGB, plan.sites[0].memoryCapacityGB)
    }
}
