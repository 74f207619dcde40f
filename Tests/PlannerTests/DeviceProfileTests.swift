import Planner
import XCTest

/// Measured micro-batch times calibrate a device: the fraction they imply is the one the cost
/// model needs to reproduce them, and figures that cannot be right are refused.
final class DeviceProfileTests: XCTestCase {
    let catalogue = try! DeviceCatalogue.shipped()

    /// Seconds from the cost model on an A100 whose products reach only 60% of the peak (whole
    /// model, and 4 of its blocks at TP2) calibrate the shipped A100 (87%) to 60%.
    func testMeasuredTimesCalibrateTheAchievableFraction() throws {
        var slow = try catalogue.device(named: "A100-80GB")
        slow.achievable = 0.6
        let slowCatalogue = DeviceCatalogue(devices: [slow])
        let model = try ModelSpec.named("llama2-7b")
        var training = TrainingSpec(globalBatchSequences: 4)
        training.attention = .fused
        func seconds(tp: Int, layers: Int) throws -> Double {
            var m = model
            m.layers = layers
            if layers != model.layers { m.vocabulary = 1 }
            let site = try SiteResources(site: SiteSpec(name: "s", device: "A100-80GB", count: tp), catalogue: slowCatalogue)
            let cost = CostModel.evaluate(model: m, training: training, site: site,
                                          layout: GroupLayout(tensorParallel: tp, pipelineStages: 1, dataParallel: 1, microBatch: 4, recompute: false))
            return cost.stageSeconds
        }
        let yaml = """
            measurements:
              - {device: a100, model: llama2-7b, microBatch: 4, attention: fused, seconds: \(try seconds(tp: 1, layers: 32))}
              - {device: A100-80GB, model: llama2-7b, microBatch: 4, tensorParallel: 2, layers: 4, attention: fused, seconds: \(try seconds(tp: 2, layers: 4))}
            """
        let (calibrated, changes) = try DeviceProfile(yaml: yaml, source: "p.yaml").calibrate(catalogue)
        XCTAssertEqual(changes.count, 1)
        XCTAssertEqual(changes[0].achievableBefore, 0.87)
        for implied in changes[0].implied { XCTAssertEqual(implied, 0.6, accuracy: 1e-4) }
        XCTAssertEqual(try calibrated.device(named: "A100-80GB").achievable, 0.6, accuracy: 1e-4)
        XCTAssertEqual(try calibrated.device(named: "H100-SXM").achievable, 0.80, "unmeasured devices keep theirs")
    }

    func testImpossibleFiguresAreRefusedWithTheirPlace() throws {
        let tooFast = "measurements:\n  - {device: A100-80GB, model: llama2-7b, microBatch: 4, seconds: 0.001}\n"
        XCTAssertThrowsError(try DeviceProfile(yaml: tooFast, source: "p.yaml").calibrate(catalogue)) { error in
            XCTAssertTrue("\(error)".contains("measurements.0.seconds"), "\(error)")
        }
        let unknown = "measurements:\n  - {device: A100-90GB, model: llama2-7b, microBatch: 4, seconds: 1}\n"
        XCTAssertThrowsError(try DeviceProfile(yaml: unknown, source: "p.yaml").calibrate(catalogue)) { error in
            XCTAssertTrue("\(error)".contains("A100-80GB"), "\(error)")
        }
        let typo = "measurements:\n  - {device: A100-80GB, model: llama2-7b, microbatch: 4, seconds: 1}\n"
        XCTAssertThrowsError(try DeviceProfile(yaml: typo, source: "p.yaml")) { error in
            XCTAssertTrue("\(error)".contains("p.yaml:2"), "\(error)")
        }
    }
}
