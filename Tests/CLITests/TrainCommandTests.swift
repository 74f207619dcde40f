import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Training
import XCTest

/// Runs the real `tributary` executable as a child process, as a user would.
final class TrainCommandTests: XCTestCase {
    func run(_ arguments: [String]) throws -> CLIResult { try runTributary(arguments) }


    func writeConfig(_ yaml: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent("run.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// A checkpoint can verify (checksums) and still hold a diverged model: `eval` says so and fails.
    func testEvalOfANonFiniteModelFailsAndSaysSo() throws {
        let dir = try temporaryDirectory()
        let config = try TrainConfig.load(yaml: """
            model: {vocabSize: 32, contextLength: 16, layers: 1, heads: 2, channels: 16}
            batchSize: 4
            sequenceLength: 16
            steps: 2
            data: {markovVocabulary: 32, trainTokens: 10000, validationTokens: 2000}
            """)
        let trainer = try Trainer(config: config)
        for i in [3, 400] { trainer.model.parameters.base[i] = .nan }
        let saved = try CheckpointStore(directory: dir.appendingPathComponent("checkpoints"), keep: 1).save(trainer)
        let r = try run(["eval", "--checkpoint", saved.path])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("2 of") && r.stderr.contains("not finite"), r.stderr)
        XCTAssertFalse(r.stdout.contains("validation loss"), r.stdout)
    }

    func testShortRunWritesRunFolder() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig("""
            model: {vocabSize: 32, contextLength: 16, layers: 1, heads: 2, channels: 16}
            batchSize: 4
            sequenceLength: 16
            steps: 20
            data: {markovVocabulary: 32, trainTokens: 10000, validationTokens: 2000}
            evaluation: {interval: 10, batches: 2}
            """, in: dir)
        let out = dir.appendingPathComponent("run")
        let r = try run(["train", "--config", config, "--out", out.path, "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("step 20/20"), r.stdout)
        XCTAssertTrue(r.stdout.contains("done: validation loss"), r.stdout)
        let resolved = try String(contentsOf: out.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertTrue(resolved.contains("threads: 2"), resolved)
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 20)
        let last = try JSONSerialization.jsonObject(with: Data(lines[19].utf8)) as? [String: Any]
        XCTAssertEqual(last?["step"] as? Int, 20)
        XCTAssertNotNil(last?["validationLoss"])
        XCTAssertNotNil(last?["tokensPerSecond"])
        // The loss curve: well-formed SVG with a training line of 20 points and validation points.
        let svg = try Data(contentsOf: out.appendingPathComponent("loss.svg"))
        let collector = PolylineCollector()
        let parser = XMLParser(data: svg)
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "loss.svg is not well-formed XML")
        XCTAssertEqual(collector.polylines.map { $0.split(separator: " ").count }, [20, 2])

        let eval = try run(["eval", "--checkpoint", out.path])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("(step 20)") && eval.stdout.contains("perplexity"), eval.stdout)
        let greedy = ["generate", "--checkpoint", out.path, "--prompt-tokens", "1,2,3", "--max-tokens", "8", "--temperature", "0"]
        let first = try run(greedy), second = try run(greedy)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, second.stdout, "greedy decoding is deterministic")
        XCTAssertEqual(first.stdout.split(separator: "\n").last?.split(separator: ",").count, 8, first.stdout)
        XCTAssertTrue(first.stderr.contains("tokens/s"), first.stderr)
        let bad = try run(["generate", "--checkpoint", out.path, "--prompt-tokens", "1,99"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("ids in 0..<32"), bad.stderr)
    }

    func testBadConfigsGiveOneLineErrorsNamingTheField() throws {
        let dir = try temporaryDirectory()
        let cases: [(String, String)] = [
            ("batchsize: 4", "config field 'batchsize': unknown key; did you mean 'batchSize'?"),
            ("batchSize: -1", "config field 'batchSize': must be positive, got -1"),
            ("model: {vocabSize: 64, contextLength: 8, layers: 1, heads: 5, channels: 16}", "config field 'model.heads': (5) must divide channels (16)"),
        ]
        for (yaml, message) in cases {
            let r = try run(["train", "--config", try writeConfig(yaml, in: dir), "--out", dir.appendingPathComponent("x").path])
            XCTAssertEqual(r.status, 1, yaml)
            XCTAssertTrue(r.stderr.hasPrefix("error: " + message), "\(yaml): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path), "no run folder for a bad config")
        }
        let missing = try run(["train", "--config", dir.appendingPathComponent("nope.yaml").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("cannot read"), missing.stderr)
    }

    func testBadFlagsAreRejected() throws {
        let r = try run(["bench", "engine", "--steps", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--steps must be in 1...1000"), r.stderr)
        let threads = try run(["train", "--threads", "0", "--steps", "1"])
        XCTAssertEqual(threads.status, 1)
        XCTAssertTrue(threads.stderr.contains("'threads': must be positive"), threads.stderr)
    }
}

/// Collects the `points` of every <polyline> in an SVG.
final class PolylineCollector: NSObject, XMLParserDelegate {
    var polylines: [String] = []

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if element == "polyline", let points = attributes["points"] { polylines.append(points) }
    }
}
