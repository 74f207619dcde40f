import Planner
import XCTest

/// Pipelines through several sites: layers split by speed and memory, sites ordered for the links.
final class SpanningPipelineTests: XCTestCase {
    let catalogue = try! DeviceCatalogue.shipped()

    /// Two homes of 4 consumer GPUs each cannot hold a 6.7B model for training alone (16 bytes
    /// per parameter ≈ 107 GB against 4 × 24 GB × 0.9); together they can.
    func testAPipelineAcrossSitesHoldsAModelNoSiteHoldsAlone() throws {
        let cluster = ClusterSpec(name: "homes", sites: [SiteSpec(name: "alice", device: "RTX-4090", count: 4),
                                                         SiteSpec(name: "bob", device: "RTX-3090", count: 4)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 1, latencyMs: 20)))
        let model = try ModelSpec.named("6.7b")
        let training = TrainingSpec(globalBatchSequences: 64)
        for site in cluster.sites {
            let alone = try Planner.plan(cluster: ClusterSpec(name: site.name, sites: [site]), catalogue: catalogue, model: model, training: training)
            XCTAssertFalse(alone.chosen.fits, "\(site.name) alone should not hold 6.7B")
        }
        let result = try Planner.plan(cluster: cluster, catalogue: catalogue, model: model, training: training)
        XCTAssertTrue(result.chosen.fits)
        let span = try XCTUnwrap(result.chosen.pipelineAcrossSites, "the plan should be one pipeline through both homes")
        XCTAssertEqual(span.stages.reduce(0) { $0 + $1.layers }, model.layers, "every layer on exactly one stage")
        XCTAssertTrue(span.stages.allSatisfy { $0.layers >= 1 && $0.memoryBytes <= $0.capacityBytes })
        for site in cluster.sites {
            XCTAssertLessThanOrEqual(span.stages.filter { $0.site == site.name }.reduce(0) { $0 + $1.tensorParallel } * span.replicas, site.count,
                                     "\(site.name) over its devices")
        }
        XCTAssertTrue(result.runnersUp.contains { $0.note.contains("no site holds") })
    }

    /// With memory to spare, layers follow speed: no layer can move off the slowest stage to
    /// another stage without that stage becoming the slowest (the split is optimal one layer
    /// at a time), and the faster device's stages hold more layers.
    func testLayersFollowDeviceSpeed() throws {
        let cluster = ClusterSpec(name: "mixed", sites: [SiteSpec(name: "fast", device: "H100-SXM", count: 4),
                                                         SiteSpec(name: "slow", device: "A100-80GB", count: 8)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 100, latencyMs: 1)))
        let span = try XCTUnwrap(Planner.pipelineAcrossSites(cluster: cluster, catalogue: catalogue, model: try ModelSpec.named("2.7b"),
                                                             training: TrainingSpec(globalBatchSequences: 256)))
        XCTAssertTrue(span.stages.allSatisfy { $0.memoryBytes < 0.8 * $0.capacityBytes }, "memory should not bind here")
        let fast = span.stages.filter { $0.device == "H100-SXM" }, slow = span.stages.filter { $0.device == "A100-80GB" }
        XCTAssertFalse(fast.isEmpty || slow.isEmpty)
        XCTAssertGreaterThan(fast.map(\.layers).reduce(0, +) * slow.count, slow.map(\.layers).reduce(0, +) * fast.count)
        let slowest = span.stages.max { $0.stageSeconds < $1.stageSeconds }!
        // The head sits on the last stage; per-layer time from a middle stage of each device.
        let perLayer = Dictionary(grouping: span.stages.dropLast(), by: \.device).mapValues { group -> Double in
            let s = group.max { $0.layers < $1.layers }!
            return s.computeSeconds / Double(s.layers)
        }
        for s in span.stages where s != slowest {
            guard let layer = perLayer[s.device] else {
                XCTFail("no middle stage of \(s.device): \(span.stages.map { ($0.device, $0.layers) })")
                continue
            }
            XCTAssertGreaterThanOrEqual(s.stageSeconds + layer * 1.0001, slowest.stageSeconds,
                                        "a layer could move from the slowest stage to one at \(s.site)")
        }
    }

    /// Three sites in a line (a–b and b–c fast, a–c slow): the pipeline must not cross a–c.
    func testSiteOrderAvoidsTheSlowLink() throws {
        let cluster = ClusterSpec(name: "line", sites: ["a", "b", "c"].map { SiteSpec(name: $0, device: "RTX-4090", count: 4) },
                                  links: InterSiteLinks(default: SiteLink(gbps: 10, latencyMs: 5),
                                                        between: [InterSiteLinks.Pair(sites: ["a", "c"], gbps: 0.1, latencyMs: 80)]))
        let span = try XCTUnwrap(Planner.pipelineAcrossSites(cluster: cluster, catalogue: catalogue, model: try ModelSpec.named("13b"),
                                                             training: TrainingSpec(globalBatchSequences: 64)))
        var crossings: [Set<String>] = []
        for (x, y) in zip(span.stages, span.stages.dropFirst()) where x.site != y.site { crossings.append([x.site, y.site]) }
        XCTAssertFalse(crossings.contains(["a", "c"]), "order \(span.order) crosses the slow link")
        XCTAssertEqual(span.order.count, 3)
    }

    /// The simulator's 1F1B replay of a pipeline through sites agrees with the analytic step.
    func testSimulatorAgreesOnPipelinesAcrossSites() throws {
        let cluster = ClusterSpec(name: "homes", sites: [SiteSpec(name: "alice", device: "RTX-4090", count: 8),
                                                         SiteSpec(name: "bob", device: "RTX-3090", count: 8)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 1, latencyMs: 20)))
        let result = try Planner.plan(cluster: cluster, catalogue: catalogue, model: try ModelSpec.named("13b"), training: TrainingSpec(globalBatchSequences: 128))
        let plan = result.chosen
        XCTAssertNotNil(plan.pipelineAcrossSites)
        let report = Simulator.run(plan: plan, cluster: cluster, steps: 2)
        print(String(format: "pipeline across sites: analytic %.2f s, simulated %.2f s per step", plan.stepSeconds, report.meanStepSeconds))
        XCTAssertEqual(report.meanStepSeconds, plan.stepSeconds, accuracy: 0.05 * plan.stepSeconds)
        // A straggler on one stage slows the step; losing a replica's device moves its work.
        let stages = plan.pipelineAcrossSites!.stages
        let busiest = stages.indices.max { stages[$0].computeSeconds < stages[$1].computeSeconds }!
        let slowed = Simulator.run(plan: plan, cluster: cluster, steps: 2,
                                   stragglers: [Straggler(site: stages[busiest].site, stage: busiest, slowdown: 3)])
        XCTAssertGreaterThan(slowed.meanStepSeconds, report.meanStepSeconds * 1.2)
    }

    /// A site behind a slow link that only slows a pipeline is left out of it: two homes at
    /// 10 Gbit/s hold GPT-6.7B together; a third, 0.9 Gbit/s from both, would put a slow hop
    /// into every micro-batch.
    func testAPipelineLeavesOutASiteThatOnlySlowsIt() throws {
        let cluster = ClusterSpec(name: "three", sites: [SiteSpec(name: "alice", device: "RTX-4090", count: 4),
                                                         SiteSpec(name: "bob", device: "RTX-4090", count: 4),
                                                         SiteSpec(name: "carol", device: "RTX-3090", count: 4)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 0.9, latencyMs: 30),
                                                        between: [.init(sites: ["alice", "bob"], gbps: 10, latencyMs: 2)]))
        let model = try ModelSpec.named("6.7b")
        let training = TrainingSpec(globalBatchSequences: 64)
        let span = try XCTUnwrap(Planner.pipelineAcrossSites(cluster: cluster, catalogue: catalogue, model: model, training: training))
        XCTAssertTrue(span.fits)
        XCTAssertEqual(Set(span.order), ["alice", "bob"], "carol only slows the pipeline")
        let all = try XCTUnwrap(Planner.pipelineAcrossSites(cluster: ClusterSpec(name: "forced", sites: cluster.sites,
                                                                                   links: InterSiteLinks(default: SiteLink(gbps: 0.9, latencyMs: 30))),
                                                          catalogue: catalogue, model: model, training: training))
        XCTAssertLessThan(span.stepSeconds, all.stepSeconds)
    }

    /// Stages of a pipeline through data centres are tensor parallel inside their nodes: GPT-175B
    /// fits neither site of 64 A100-40GB alone; through both, the stages use TP across each
    /// node's NVLink, and every device holds its share within its memory.
    func testPipelineStagesThroughSitesAreTensorParallelInsideNodes() throws {
        let cluster = ClusterSpec(name: "two-dcs", sites: [SiteSpec(name: "east", device: "A100-40GB", count: 64),
                                                           SiteSpec(name: "west", device: "A100-40GB", count: 64)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 100, latencyMs: 10)))
        let model = try ModelSpec.named("175b")
        let training = TrainingSpec(globalBatchSequences: 512)
        let span = try XCTUnwrap(Planner.pipelineAcrossSites(cluster: cluster, catalogue: catalogue, model: model, training: training))
        XCTAssertTrue(span.fits)
        XCTAssertTrue(span.stages.allSatisfy { $0.tensorParallel > 1 }, "\(span.stages.map(\.tensorParallel))")
        XCTAssertEqual(span.stages.reduce(0) { $0 + $1.layers }, model.layers)
        for site in cluster.sites {
            let devices = span.stages.filter { $0.site == site.name }.reduce(0) { $0 + $1.tensorParallel } * span.replicas
            XCTAssertLessThanOrEqual(devices, site.count)
        }
        let plan = try Planner.plan(cluster: cluster, catalogue: catalogue, model: model, training: training).chosen
        XCTAssertTrue(plan.fits)
        XCTAssertLessThanOrEqual(plan.throughput.devices, 128)
    }

    /// A pipeline through sites that the user gives is predicted as given: its stages, tensor
    /// parallelism, replicas and layer split; what it cannot be is refused.
    func testAGivenPipelineThroughSitesIsPredictedAsGiven() throws {
        let cluster = ClusterSpec(name: "mixed", sites: [SiteSpec(name: "v", device: "V100-16GB", count: 12), SiteSpec(name: "t", device: "T4", count: 4)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 10, latencyMs: 0.1)))
        let model = try ModelSpec.named("L24-H1024-A16")
        let training = TrainingSpec(globalBatchSequences: 32)
        let given = try GivenPipeline(parsing: "v:6,t:2 replicas=2 mb=1 norecompute layers=3,4,3,3,3,3,3,2")
        let plan = try Planner.evaluate(cluster: cluster, catalogue: catalogue, model: model, training: training, pipeline: given)
        let span = try XCTUnwrap(plan.pipelineAcrossSites)
        XCTAssertEqual(span.stages.map(\.layers), [3, 4, 3, 3, 3, 3, 3, 2])
        XCTAssertEqual(span.stages.map(\.site), Array(repeating: "v", count: 6) + ["t", "t"])
        XCTAssertEqual(span.replicas, 2)
        XCTAssertEqual(plan.throughput.devices, 16)
        // Left open, the split follows speed: the T4 stages (half a V100's rate) hold fewer layers.
        let free = try Planner.evaluate(cluster: cluster, catalogue: catalogue, model: model, training: training,
                                        pipeline: try GivenPipeline(parsing: "v:6,t:2 replicas=2"))
        XCTAssertLessThan(free.pipelineAcrossSites!.stages.last!.layers, free.pipelineAcrossSites!.stages.first!.layers)
        XCTAssertLessThanOrEqual(free.stepSeconds, plan.stepSeconds * (1 + 1e-9))
        for bad in ["v:6", "v:6,t:2 layers=1,2", "v:7,t:2 replicas=2", "v:6,x:2", "v:6,t:2:tp3", "v:6,t:2 speed=1"] {
            XCTAssertThrowsError(try Planner.evaluate(cluster: cluster, catalogue: catalogue, model: model, training: training,
                                                      pipeline: try GivenPipeline(parsing: bad)), bad)
        }
    }
}
