import Foundation
import XCTest

/// The real-text path end to end, as a user runs it: tokenizer train, data prepare, train,
/// generate, export to Hugging Face's layout and import back.
final class RealTextCommandTests: XCTestCase {
    func testTokenizerDataTrainGenerate() throws {
        let text = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../TrainingTests/Fixtures/gpl-3.txt").standardizedFileURL
        let dir = try temporaryDirectory()
        let tokenizer = dir.appendingPathComponent("tok/tokenizer.json").path
        let data = dir.appendingPathComponent("data").path

        let t = try runTributary(["tokenizer", "train", "--input", text.path, "--vocab-size", "512", "--out", tokenizer])
        XCTAssertEqual(t.status, 0, t.stderr)
        let p = try runTributary(["data", "prepare", "--input", text.path, "--tokenizer", tokenizer, "--out", data])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stdout.hasPrefix("prepared: 1 files"), p.stdout)
        let again = try runTributary(["data", "prepare", "--input", text.path, "--tokenizer", tokenizer, "--out", data])
        XCTAssertTrue(again.stdout.hasPrefix("up to date"), again.stdout)

        let config = dir.appendingPathComponent("run.yaml")
        try """
            model: {vocabSize: 512, contextLength: 32, layers: 1, heads: 2, channels: 32}
            batchSize: 4
            sequenceLength: 32
            steps: 10
            evaluation: {interval: 0, batches: 2}
            data: {prepared: "\(data)"}
            """.write(to: config, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run").path
        let r = try runTributary(["train", "--config", config.path, "--out", run])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("data: prepared shards"), r.stdout)

        let g = try runTributary(["generate", "--checkpoint", run, "--tokenizer", tokenizer, "--prompt", "The licenses for most",
                                  "--max-tokens", "12", "--seed", "5"])
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertTrue(g.stdout.hasPrefix("The licenses for most"), g.stdout)
        let wrong = try runTributary(["generate", "--checkpoint", run, "--tokenizer", tokenizer, "--prompt-tokens", "600"])
        XCTAssertNotEqual(wrong.status, 0)

        // The run's tokenizer is found beside its data; the export carries it, and the imported
        // model samples exactly what the original does.
        let hf = dir.appendingPathComponent("hf").path
        let e = try runTributary(["export", "--format", "hf", "--checkpoint", run, hf])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: hf + "/tokenizer.json")), try Data(contentsOf: URL(fileURLWithPath: tokenizer)))
        let again2 = try runTributary(["export", "--format", "hf", "--checkpoint", run, hf])
        XCTAssertTrue(again2.status != 0 && again2.stderr.contains("already holds files"), again2.stderr)
        let imported = dir.appendingPathComponent("imported").path
        let i = try runTributary(["import", "--format", "hf", hf, "--out", imported])
        XCTAssertEqual(i.status, 0, i.stderr)
        let sample = ["--prompt", "The licenses for most", "--max-tokens", "12", "--seed", "5"]
        let fromImport = try runTributary(["generate", "--checkpoint", imported] + sample)
        let fromRun = try runTributary(["generate", "--checkpoint", run] + sample)
        XCTAssertEqual(fromImport.status, 0, fromImport.stderr)
        XCTAssertEqual(fromImport.stdout, fromRun.stdout)
        XCTAssertEqual(fromRun.stdout, g.stdout, "the run's own tokenizer is used without --tokenizer")
        let notHF = try runTributary(["import", "--format", "hf", data, "--out", dir.appendingPathComponent("x").path])
        XCTAssertTrue(notHF.status != 0 && notHF.stderr.contains("config.json"), notHF.stderr)
    }
}
