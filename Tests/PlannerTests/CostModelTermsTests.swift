import Planner
import XCTest

/// The cost model's terms against known values and against each other: model shapes, fused
/// attention, precision, ZeRO stages, MFU over the devices used.
final class CostModelTermsTests: XCTestCase {
    let catalogue = try! DeviceCatalogue.shipped()

    func site(_ device: String, _ count: Int) throws -> SiteResources {
        try SiteResources(site: SiteSpec(name: "s", device: device, count: count), catalogue: catalogue)
    }

    /// Parameter counts of published models (Meta's model cards: Llama 2 7B 6.74B, 70B 68.98B;
    /// Llama 3 8B 8.03B) and GPT-3 XL's 1.3B, from the shape grammar and the presets.
    func testShapesCountTheParametersOfPublishedModels() throws {
        XCTAssertEqual(try ModelSpec.named("llama2-7b").parameters / 1e9, 6.74, accuracy: 0.02)
        XCTAssertEqual(try ModelSpec.named("llama2-70b").parameters / 1e9, 68.98, accuracy: 0.1)
        XCTAssertEqual(try ModelSpec.named("llama3-8b").parameters / 1e9, 8.03, accuracy: 0.02)
        let parsed = try ModelSpec.named("L32-H4096-A32-K8-F14336-V128256-S8192-GLU-UNTIED-ROPE-NOBIAS")
        XCTAssertEqual(parsed.parameters, try ModelSpec.named("llama3-8b").parameters, accuracy: 1)
        XCTAssertEqual(try ModelSpec.named("1.3b").parameters / 1e9, 1.32, accuracy: 0.02)
        // The vocabulary is read, not ignored: 131072 × 2048 more embedding weights than 51200.
        let big = try ModelSpec.named("L24-H2048-A16-V131072"), small = try ModelSpec.named("L24-H2048-A16")
        XCTAssertEqual(big.parameters - small.parameters, Double(131_072 - 51_200) * 2048)
        // Megatron-LM's count for GPT (Eq. 3 without recomputation): 72·L·h²·(1 + s/6h) + 6hV per token.
        let (l, h, s, v) = (24.0, 2048.0, 2048.0, 131_072.0)
        XCTAssertEqual(big.trainingFLOPsPerToken, 72 * l * h * h * (1 + s / (6 * h)) + 6 * h * v, accuracy: 1)
    }

    func testShapesWithUnknownPartsAreRefusedNotIgnored() {
        for bad in ["L24-H2048-A16-V131072-junk", "L24-H2048-X4", "L24-H2048-A16-A8", "L24-H2048-A5", "L24-H2048-A16-K3", "L0-H2048"] {
            XCTAssertThrowsError(try ModelSpec.named(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("model"), "\(bad): \(error)")
            }
        }
        XCTAssertThrowsError(try ModelSpec.named("L24-H2048-A16-junk")) { error in
            XCTAssertTrue("\(error)".contains("'junk'"), "\(error)")
        }
    }

    func testLayoutsParseAndRefuseWhatTheyDoNotKnow() throws {
        let g = try GivenLayout(parsing: "east=tp8,pp4,dp32,mb2,recompute,fsdp,tpoverlap")
        XCTAssertEqual(g, GivenLayout(site: "east", tensorParallel: 8, pipelineStages: 4, dataParallel: 32, microBatch: 2, recompute: true,
                                      zeroStage: 3, tensorParallelOverlap: true))
        XCTAssertNil(try GivenLayout(parsing: "dp8").recompute, "left open: the planner chooses")
        for bad in ["tp0", "tp8,tp4", "dp8,zero4", "dp8,recompute,norecompute", "=tp8", "dp8,flash", "tp99999999999,pp99999999999,dp99999"] {
            XCTAssertThrowsError(try GivenLayout(parsing: bad), bad)
        }
        XCTAssertThrowsError(try SyncChoice(parsing: "diloco:1"))
        XCTAssertEqual(try SyncChoice(parsing: "diloco:250").options.map(\.interval), [250])
    }

    /// Fused attention never writes the s × s scores: at 8k tokens it needs far less memory and
    /// time than unfused attention, and the gap shrinks at short sequences.
    func testFusedAttentionSavesTheScoresTrafficAndMemory() throws {
        let a100 = try site("A100-80GB", 8)
        var model = try ModelSpec.named("1.3b")
        let layout = GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 8, microBatch: 1, recompute: false)
        func cost(_ kernel: AttentionKernel, _ s: Int) -> GroupCost {
            model.sequenceLength = s
            var training = TrainingSpec(globalBatchSequences: 64)
            training.attention = kernel
            return CostModel.evaluate(model: model, training: training, site: a100, layout: layout)
        }
        let (fused8k, unfused8k) = (cost(.fused, 8192), cost(.unfused, 8192))
        XCTAssertLessThan(fused8k.activationMemory * 3, unfused8k.activationMemory)
        XCTAssertLessThan(fused8k.stepSeconds * 1.5, unfused8k.stepSeconds)
        let (fused2k, unfused2k) = (cost(.fused, 2048), cost(.unfused, 2048))
        XCTAssertLessThan(unfused2k.stepSeconds / fused2k.stepSeconds, unfused8k.stepSeconds / fused8k.stepSeconds)
        // auto: fused on an A100, unfused on a V100 (FlashAttention-2 needs Ampere).
        XCTAssertTrue(TrainingSpec(globalBatchSequences: 1).fusedAttention(on: try catalogue.device(named: "A100-80GB")))
        XCTAssertFalse(TrainingSpec(globalBatchSequences: 1).fusedAttention(on: try catalogue.device(named: "V100-16GB")))
    }

    /// fp32 runs at the FP32 rate: on an A100 (19.5 against 312 TFLOP/s) the matrix products
    /// take 16× longer; a device without an FP32 rate is refused with the fix.
    func testFP32RunsAtTheFP32Rate() throws {
        let a100 = try site("A100-80GB", 8)
        let model = try ModelSpec.named("1.3b")
        let layout = GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 8, microBatch: 1, recompute: false)
        var bf16 = TrainingSpec(globalBatchSequences: 64)
        bf16.attention = .unfused
        var fp32 = bf16
        fp32.useFP32()
        let ratio = CostModel.evaluate(model: model, training: fp32, site: a100, layout: layout).computeSeconds
            / CostModel.evaluate(model: model, training: bf16, site: a100, layout: layout).computeSeconds
        // The half-rate width scales with the ridge point, so fp32's products are nearer full rate.
        XCTAssertEqual(ratio, 312 / 19.5, accuracy: 0.1 * 312 / 19.5)
        let gaudi = ClusterSpec(name: "g", sites: [SiteSpec(name: "g", device: "Gaudi2", count: 8)])
        XCTAssertThrowsError(try Planner.plan(cluster: gaudi, catalogue: catalogue, model: model, training: fp32)) { error in
            XCTAssertTrue("\(error)".contains("fp32TFLOPS"), "\(error)")
        }
    }

    /// ZeRO-3 shards the weights and gradients (a 70B model fits 64 A100s without model
    /// parallelism) and sends 3(d−1)/d of the weights per micro-batch instead of an all-reduce's 2.
    func testZeROStagesShardStateAndCostTraffic() throws {
        let a100 = try site("A100-80GB", 64)
        let model = try ModelSpec.named("llama2-70b")
        var training = TrainingSpec(globalBatchSequences: 128)
        training.attention = .fused
        func cost(_ zero: Int) -> GroupCost {
            CostModel.evaluate(model: model, training: training, site: a100,
                               layout: GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 64, microBatch: 1, recompute: true, zeroStage: zero))
        }
        let (z1, z3) = (cost(1), cost(3))
        XCTAssertGreaterThan(z1.memoryBytes, 80e9)
        XCTAssertLessThan(z3.memoryBytes, 0.9 * 80e9)
        XCTAssertEqual(z3.dataParallelBytes / z1.dataParallelBytes, 3.0 * Double(z3.microBatches) / 2, accuracy: 1e-6)
    }

    /// MFU divides by the devices a plan uses: a site left idle does not dilute it.
    func testMFUCountsOnlyTheDevicesUsed() throws {
        let model = try ModelSpec.named("6.7b")
        let training = TrainingSpec(globalBatchSequences: 512)
        let one = ClusterSpec(name: "one", sites: [SiteSpec(name: "a", device: "H100-SXM", count: 64)])
        let two = ClusterSpec(name: "two", sites: [SiteSpec(name: "a", device: "H100-SXM", count: 64), SiteSpec(name: "b", device: "P100", count: 64)],
                              links: InterSiteLinks(default: SiteLink(gbps: 0.1, latencyMs: 100)))
        let given = [GivenLayout(site: "a", dataParallel: 64, zeroStage: 1)]
        let alone = try Planner.evaluate(cluster: one, catalogue: catalogue, model: model, training: training, given: given)
        let beside = try Planner.evaluate(cluster: two, catalogue: catalogue, model: model, training: training, given: given)
        XCTAssertEqual(beside.throughput.devices, 64)
        XCTAssertEqual(beside.mfu, alone.mfu, accuracy: 1e-9)
        XCTAssertGreaterThan(beside.throughput.hfu, 0)
        XCTAssertEqual(beside.throughput.hardwareTFLOPSPerDevice, beside.throughput.modelTFLOPSPerDevice, accuracy: 1e-9, "no recomputation")
    }

    /// Asking for a synchronous plan never yields DiLoCo; asking for DiLoCo always does.
    func testSyncChoiceIsHonoured() throws {
        let cluster = ClusterSpec(name: "far", sites: [SiteSpec(name: "a", device: "A100-80GB", count: 32), SiteSpec(name: "b", device: "A100-80GB", count: 32)],
                                  links: InterSiteLinks(default: SiteLink(gbps: 1, latencyMs: 50)))
        let model = try ModelSpec.named("1.3b"), training = TrainingSpec(globalBatchSequences: 512)
        let auto = try Planner.plan(cluster: cluster, catalogue: catalogue, model: model, training: training).chosen
        XCTAssertGreaterThan(auto.sync.interval, 1, "1 Gbit/s between sites calls for DiLoCo")
        let sync = try Planner.plan(cluster: cluster, catalogue: catalogue, model: model, training: training, sync: .everyStep)
        XCTAssertEqual(sync.chosen.sync.interval, 1)
        XCTAssertTrue(([sync.chosen] + sync.runnersUp).allSatisfy { $0.sync.interval == 1 })
        let diloco = try Planner.plan(cluster: cluster, catalogue: catalogue, model: model, training: training, sync: .diloco(interval: 37))
        XCTAssertEqual(diloco.chosen.sync.interval, 37)
        XCTAssertNil(diloco.chosen.pipelineAcrossSites)
    }

    /// A tied embedding makes a pipeline's first and last stage all-reduce its gradient every
    /// step: V·h/t values in the compute format over the NIC, exposed; an untied head or a single
    /// stage has nothing to exchange.
    func testATiedEmbeddingIsAllReducedBetweenAPipelinesEnds() throws {
        let a100 = try site("A100-80GB", 16)
        var training = TrainingSpec(globalBatchSequences: 16)
        training.gradientBytes = 4
        func cost(_ name: String, stages: Int) throws -> GroupCost {
            CostModel.evaluate(model: try ModelSpec.named(name), training: training, site: a100,
                               layout: GroupLayout(tensorParallel: 2, pipelineStages: stages, dataParallel: 1, microBatch: 1, recompute: false))
        }
        let tied = try cost("L24-H2048-A16-V50257", stages: 4)
        let bytes = 50257.0 * 2048 / 2 * 2 // values per tensor-parallel rank × BF16
        XCTAssertEqual(tied.dataParallelBytes, bytes, accuracy: 1)
        let nic = a100.nicBytesPerSecond * CostModel.linkEfficiency
        XCTAssertEqual(tied.dataParallelSeconds, bytes / nic + 2 * a100.latency, accuracy: 1e-12)
        XCTAssertEqual(tied.stepSeconds, tied.pipelineSeconds + tied.dataParallelSeconds + tied.optimizerSeconds, accuracy: 1e-12)
        XCTAssertEqual(try cost("L24-H2048-A16-V50257-UNTIED", stages: 4).dataParallelBytes, 0)
        XCTAssertEqual(try cost("L24-H2048-A16-V50257", stages: 1).dataParallelBytes, 0)
    }

    /// Hidden collectives are not free: the compute they overlap is slowed by 18.9% of their
    /// time (Lee et al. 2025); collectives after the backward hide nothing and slow nothing.
    func testHiddenCollectivesSlowTheComputeTheyOverlap() throws {
        let a100 = try site("A100-80GB", 64)
        let model = try ModelSpec.named("1.3b")
        let training = TrainingSpec(globalBatchSequences: 64)
        func cost(overlapped: Bool) -> GroupCost {
            CostModel.evaluate(model: model, training: training, site: a100,
                               layout: GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 64, microBatch: 1, recompute: false,
                                                   zeroStage: 1, dataParallelOverlapped: overlapped))
        }
        let (hidden, after) = (cost(overlapped: true), cost(overlapped: false))
        // Half of the all-reduce hides behind the backward pass and costs 18.9% of its time there.
        XCTAssertEqual(hidden.dataParallelSeconds, after.dataParallelSeconds / 2, accuracy: 1e-12)
        XCTAssertEqual(hidden.contentionSeconds, 0.189 * after.dataParallelSeconds / 2, accuracy: 1e-12)
        XCTAssertEqual(after.contentionSeconds, 0)
        XCTAssertEqual(hidden.stepSeconds, hidden.pipelineSeconds + hidden.dataParallelSeconds + hidden.contentionSeconds
                       + hidden.optimizerSeconds, accuracy: 1e-12)
    }

    /// The loss reads and writes the logits in memory-bound passes: 24 bytes per logit over the
    /// device's bandwidth, on top of the blocks' own traffic.
    func testTheLossPassesOverTheLogitsAtMemoryBandwidth() throws {
        let h100 = try site("H100-SXM", 1)
        let training = TrainingSpec(globalBatchSequences: 2)
        func memoryBound(_ name: String) throws -> Double {
            CostModel.evaluate(model: try ModelSpec.named(name), training: training, site: h100,
                               layout: GroupLayout(tensorParallel: 1, pipelineStages: 1, dataParallel: 1, microBatch: 2, recompute: false))
                .memoryBoundSeconds
        }
        let extra = try memoryBound("L2-H1024-A16-V128001") - memoryBound("L2-H1024-A16-V1")
        XCTAssertEqual(extra, 2 * 2048 * 128_000 * 24 / 3.35e12, accuracy: 1e-9)
    }
}
