import Planner
import XCTest

/// The cost model against measured runs in ../shared/reference/published-runs.md, each given the
/// cluster, model, batch and layout its authors used and counted the way its source counts.
final class PublishedRunsTests: XCTestCase {
    struct MegatronRow {
        var row: Int
        var layers: Int, hidden: Int, heads: Int
        var batch: Int, gpus: Int
        var tp: Int, pp: Int
        /// Reported TFLOP/s per GPU (Eq. 3: recompute and vocabulary terms included).
        var reported: Double
    }

    static let megatron: [MegatronRow] = [
        MegatronRow(row: 1, layers: 24, hidden: 2304, heads: 24, batch: 512, gpus: 32, tp: 1, pp: 1, reported: 137),
        MegatronRow(row: 2, layers: 30, hidden: 3072, heads: 32, batch: 512, gpus: 64, tp: 2, pp: 1, reported: 138),
        MegatronRow(row: 3, layers: 36, hidden: 4096, heads: 32, batch: 512, gpus: 128, tp: 4, pp: 1, reported: 142),
        MegatronRow(row: 4, layers: 40, hidden: 6144, heads: 48, batch: 1024, gpus: 256, tp: 8, pp: 1, reported: 135),
        MegatronRow(row: 5, layers: 48, hidden: 8192, heads: 64, batch: 1536, gpus: 512, tp: 8, pp: 2, reported: 138),
        MegatronRow(row: 6, layers: 60, hidden: 10240, heads: 80, batch: 1792, gpus: 1024, tp: 8, pp: 4, reported: 140),
        MegatronRow(row: 7, layers: 80, hidden: 12288, heads: 96, batch: 2304, gpus: 1536, tp: 8, pp: 8, reported: 148),
        MegatronRow(row: 8, layers: 96, hidden: 16384, heads: 128, batch: 2160, gpus: 1920, tp: 8, pp: 16, reported: 155),
        MegatronRow(row: 9, layers: 105, hidden: 20480, heads: 128, batch: 2520, gpus: 2520, tp: 8, pp: 35, reported: 163),
        MegatronRow(row: 10, layers: 128, hidden: 25600, heads: 160, batch: 3072, gpus: 3072, tp: 8, pp: 64, reported: 163),
        // Table 2, GPT-3 175B with PTD-P at three scales.
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 384, tp: 8, pp: 12, reported: 153),
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 768, tp: 8, pp: 12, reported: 149),
        MegatronRow(row: 11, layers: 96, hidden: 12288, heads: 96, batch: 1536, gpus: 1536, tp: 8, pp: 12, reported: 141),
    ]

    func testMegatronA100RunsWithin25Percent() throws {
        let catalogue = try DeviceCatalogue.shipped()
        var worst = 0.0
        for r in Self.megatron {
            let model = ModelSpec(name: "row \(r.row)", layers: r.layers, hidden: r.hidden, heads: r.heads, sequenceLength: 2048, vocabulary: 51200)
            let site = try SiteResources(site: SiteSpec(name: "selene", device: "A100-80GB", count: r.gpus), catalogue: catalogue)
            let dp = r.gpus / (r.tp * r.pp)
            let training = TrainingSpec(globalBatchSequences: r.batch)
            let (layout, cost) = try XCTUnwrap(Planner.bestMicroBatch(model: model, training: training, site: site,
                                                                       tensorParallel: r.tp, pipelineStages: r.pp, dataParallel: dp,
                                                                       recompute: true), "row \(r.row) fits no micro-batch")
            // Megatron counts Eq. (3): 96·B·s·l·h²·(1 + s/6h + V/16lh) per step.
            let flops = Double(r.batch) * 2048 * model.recomputeFLOPsPerToken
            let predicted = flops / cost.stepSeconds / Double(r.gpus) / 1e12
            let error = predicted / r.reported - 1
            worst = max(worst, abs(error))
            print(String(format: "Megatron row %2d (%4d GPUs, TP%d PP%d DP%d, micro-batch %d): predicted %.1f, reported %.0f TFLOP/s per GPU (%+.1f%%)",
                         r.row, r.gpus, r.tp, r.pp, dp, layout.microBatch, predicted, r.reported, 100 * error))
            XCTAssertLessThan(abs(error), 0.25, "row \(r.row)")
        }
        print(String(format: "worst Megatron error %.1f%%", 100 * worst))
    }
}

extension PublishedRunsTests {
    /// DT-FM case 1 (one data centre: 8 × p3.16xlarge, 64 V100-16GB, 100 Gbit/s inside a node as
    /// DT-FM shaped it, 25 Gbit/s between nodes): GPT3-XL-like L24 h2048, batch 4096 × 2048,
    /// micro-batch 1, fp16. DT-FM's scheduler ran 8 pipeline stages × 8 data-parallel replicas.
    /// DT-FM counts 96·B·s·l·h²·(1 + s/6h), without the vocabulary term, and reports 2.866 PFLOP/s.
    func testDTFMCaseOneWithin25Percent() throws {
        let catalogue = try DeviceCatalogue.shipped()
        var site = SiteSpec(name: "aws", device: "V100-16GB", count: 64)
        site.intraNodeGBs = 100 / 8
        site.nicGbps = 25
        let resources = try SiteResources(site: site, catalogue: catalogue)
        let model = ModelSpec(name: "gpt3-xl", layers: 24, hidden: 2048, heads: 16, sequenceLength: 2048, vocabulary: 50257)
        let training = TrainingSpec(globalBatchSequences: 4096)
        let layout = GroupLayout(tensorParallel: 1, pipelineStages: 8, dataParallel: 8, microBatch: 1, recompute: false)
        let cost = CostModel.evaluate(model: model, training: training, site: resources, layout: layout)
        let (l, h, s) = (24.0, 2048.0, 2048.0)
        let flops = 96 * 4096 * s * l * h * h * (1 + s / (6 * h))
        let predicted = flops / cost.stepSeconds / 1e15
        let error = predicted / 2.866 - 1
        print(String(format: "DT-FM case 1: predicted %.3f PFLOP/s (%.2f s/iteration), reported 2.866 (32.99 s): %+.1f%%",
                     predicted, cost.stepSeconds, 100 * error))
        XCTAssertLessThan(abs(error), 0.25)
    }
}
