import Basics
import Foundation
import ModelCore
import XCTest

/// Issue 15: engines of their own join a run through the engine link. Python workers (the package in
/// python/, a NumPy engine from python/tests/numpy_worker.py) train beside a native worker in one ring.
final class EngineLinkCommandTests: XCTestCase {
    static let model = "32,32,1,32"  // vocabulary, context, layers, channels of startCoordinator's run
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// python3 with NumPy, or a skip (a failure under CI, which installs them).
    func requirePythonWithNumPy() throws { try requirePython(modules: ["numpy"]) }

    /// A NumPy engine joining `address` as `name`; its output goes to files in `dir`.
    func pythonWorker(_ name: String, address: String, token: URL, run: URL, dir: URL, model: String = model,
                      more: [String] = []) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.repository.appendingPathComponent("python/tests/numpy_worker.py").path, "--join", address,
                             "--token-file", token.path, "--name", name, "--model", model, "--seed", "\(name.hashValue & 0xffff)"]
            + more + ["--", "--out", run.path] + trusting(run)
        process.environment = ProcessInfo.processInfo.environment.merging(["TRIBUTARY": tributaryExecutable.path]) { $1 }
        for (path, set) in [("\(name).out", { process.standardOutput = $0 }), ("\(name).err", { process.standardError = $0 })]
            as [(String, (FileHandle) -> Void)] {
            let url = dir.appendingPathComponent(path)
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            set(try FileHandle(forWritingTo: url))
        }
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate() } }
        return process
    }

    func text(_ dir: URL, _ file: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)) ?? ""
    }

    struct Report: Decodable { var name: String; var round: Int; var epoch: Int?; var parameterHash: String? }

    func reports(_ run: URL) -> [Report] {
        text(run, "metrics.jsonl").split(separator: "\n").compactMap { try? JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
    }

    func testTwoPythonWorkersAndANativeOneKeepOneModel() throws {
        try requirePythonWithNumPy()
        let dir = try temporaryDirectory()
        let (coordinator, address, token, _, run) = try startCoordinator(in: dir, steps: 20, evaluationInterval: 10, workers: 3,
                                                                         innerSteps: 5, codec: "fp32")
        let python = try ["p0", "p1"].map { try pythonWorker($0, address: address, token: token, run: run, dir: dir) }
        let native = try start(["worker", "--join", address, "--token-file", token.path, "--name", "native", "--out", run.path]
                               + trusting(run), errorLog: dir.appendingPathComponent("native.log")).0
        for p in python + [native] { p.waitUntilExit() }
        XCTAssertEqual(python.map(\.terminationStatus), [0, 0], text(dir, "p0.err") + text(dir, "p1.err"))
        XCTAssertEqual(native.terminationStatus, 0, text(dir, "native.log"))
        coordinator.waitUntilExit()
        XCTAssertEqual(coordinator.terminationStatus, 0)

        // Every round, all three hold bit-identical shared parameters (fp32 codec).
        let byRound = Dictionary(grouping: reports(run), by: \.round)
        XCTAssertEqual(byRound.keys.sorted(), [0, 1, 2, 3])
        for (round, rows) in byRound {
            XCTAssertEqual(Set(rows.map(\.name)), ["p0", "p1", "native"], "round \(round)")
            XCTAssertEqual(Set(rows.compactMap(\.parameterHash)).count, 1, "round \(round): \(rows)")
        }
        // The Python side got the final report and model.
        struct Final: Decodable { var rounds: Int; var status: Int32; var layoutHash: String; var report: Report }
        let final = try JSONDecoder().decode(Final.self, from: Data(text(dir, "p0.out").utf8))
        XCTAssertEqual(final.rounds, 4)
        let model = GPTConfig(vocabSize: 32, contextLength: 32, layers: 1, heads: 2, channels: 32)
        XCTAssertEqual(final.layoutHash, hex16(ParameterLayout(config: model).hash), "the package's gpt2_layout hashes as tributary's")
        XCTAssertEqual(final.report.parameterHash, byRound[3]?.first?.parameterHash)
    }

    func testTimedRoundsGiveASlowerEngineFewerStepsInOneModel() throws {
        try requirePythonWithNumPy()
        let dir = try temporaryDirectory()
        let (coordinator, address, token, _, run) = try startCoordinator(in: dir, steps: 30, evaluationInterval: 0, workers: 2,
                                                                         innerSteps: 5, codec: "fp32", round: "time")
        let fast = try pythonWorker("fast", address: address, token: token, run: run, dir: dir, more: ["--step-seconds", "0.01"])
        let slow = try pythonWorker("slow", address: address, token: token, run: run, dir: dir, more: ["--step-seconds", "0.04"])
        for p in [fast, slow] { p.waitUntilExit() }
        XCTAssertEqual([fast.terminationStatus, slow.terminationStatus], [0, 0], text(dir, "fast.err") + text(dir, "slow.err"))
        coordinator.waitUntilExit()
        struct Line: Decodable { var name: String; var round: Int; var steps: Int; var parameterHash: String? }
        let lines = text(run, "metrics.jsonl").split(separator: "\n").compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        for (round, rows) in Dictionary(grouping: lines, by: \.round) {
            XCTAssertEqual(rows.count, 2, "round \(round)")
            XCTAssertEqual(Set(rows.compactMap(\.parameterHash)).count, 1, "round \(round): one model")
        }
        // A round is the fast engine's 5 steps of compute: the slow one fits fewer in it.
        let steps = Dictionary(lines.map { ($0.name, $0.steps) }, uniquingKeysWith: max)
        XCTAssertLessThan(steps["slow"]!, steps["fast"]!, "\(steps)")
        XCTAssertEqual(Double(steps["fast"]!) / Double(lines.filter { $0.name == "fast" }.count), 5, accuracy: 1.01, "\(steps)")
    }

    func testTheLinkBenchmarkReportsItsCostAgainstANativeRound() throws {
        try requirePythonWithNumPy()
        let r = try runTributary(["bench", "engine-link", "--config", Self.repository.appendingPathComponent("configs/markov-tiny.yaml").path,
                                  "--rounds", "3", "--package", Self.repository.appendingPathComponent("python").path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        struct Report: Decodable { var parameters: Int; var linkSecondsPerRound: Double; var nativeSecondsPerRound: Double; var fraction: Double }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        XCTAssertGreaterThan(report.linkSecondsPerRound, 0)
        XCTAssertGreaterThan(report.nativeSecondsPerRound, 0)
        XCTAssertEqual(report.fraction, report.linkSecondsPerRound / report.nativeSecondsPerRound, accuracy: 1e-9)
    }

    func testARefusedTokenAndAWrongLayoutGetTheWorkersMessages() throws {
        try requirePythonWithNumPy()
        let dir = try temporaryDirectory()
        let (_, address, token, _, run) = try startCoordinator(in: dir, steps: 20, evaluationInterval: 0, workers: 2)
        let wrong = dir.appendingPathComponent("wrong-token")
        try "guess\n".write(to: wrong, atomically: true, encoding: .utf8)

        let nativeRefusal = try runTributary(["worker", "--join", address, "--token-file", wrong.path, "--name", "n"] + trusting(run))
        XCTAssertEqual(nativeRefusal.status, 1)
        let message = try XCTUnwrap(nativeRefusal.stderr.split(separator: "\n").last { $0.hasPrefix("error: ") })
        let refused = try pythonWorker("intruder", address: address, token: wrong, run: run, dir: dir)
        refused.waitUntilExit()
        XCTAssertEqual(refused.terminationStatus, 1)
        XCTAssertTrue(text(dir, "intruder.err").contains(message), "the native worker's words: \(message)\n\(text(dir, "intruder.err"))")

        let other = try pythonWorker("other", address: address, token: token, run: run, dir: dir, model: "32,32,2,32")
        other.waitUntilExit()
        XCTAssertEqual(other.terminationStatus, 1)
        XCTAssertTrue(text(dir, "other.err").contains("error: the engine's parameters are not the run's model (layers 1, channels 32, "
            + "vocabulary 32, context 32): tensor 14 is ln_f.weight [32] in the run's model but h.1.ln_1.weight [32] in the engine's"),
                      text(dir, "other.err"))
        XCTAssertFalse(text(run, "events.jsonl").contains("\"other\""), "a wrong layout never joins")
    }

    func testAPythonWorkerThatDiesIsLostAndTheOthersFinish() throws {
        try requirePythonWithNumPy()
        let dir = try temporaryDirectory()
        let (coordinator, address, token, _, run) = try startCoordinator(in: dir, steps: 60, evaluationInterval: 0,
                                                                         flags: ["--heartbeat-timeout", "3"], workers: 3,
                                                                         innerSteps: 5, codec: "fp32")
        let dying = try pythonWorker("dies", address: address, token: token, run: run, dir: dir, more: ["--die-after", "2"])
        let living = try pythonWorker("lives", address: address, token: token, run: run, dir: dir)
        let native = try start(["worker", "--join", address, "--token-file", token.path, "--name", "native", "--out", run.path,
                                "--speed", "0.2"] + trusting(run), errorLog: dir.appendingPathComponent("native.log")).0
        for p in [dying, living, native] { p.waitUntilExit() }
        XCTAssertEqual(dying.terminationStatus, 3, "it died on purpose")
        // Its worker process, left without an engine, stopped: the coordinator dropped it.
        let dropped = text(run, "events.jsonl").split(separator: "\n").filter { $0.contains("\"dies\"") }
        XCTAssertTrue(dropped.contains { $0.contains("\"kind\":\"lost\"") || $0.contains("\"kind\":\"left\"") }, "\(dropped)")
        XCTAssertEqual(living.terminationStatus, 0, text(dir, "lives.err"))
        XCTAssertEqual(native.terminationStatus, 0, text(dir, "native.log"))
        coordinator.waitUntilExit()
        let last = reports(run).filter { $0.round == 11 }
        XCTAssertEqual(Set(last.map(\.name)), ["lives", "native"], "the two survivors finished the run")
        XCTAssertEqual(Set(last.compactMap(\.parameterHash)).count, 1)
    }
}

/// The PyTorch example (examples/pytorch_gpt2.py): Hugging Face's GPT2LMHeadModel trained from PyTorch
/// beside a native worker on prepared shards, in one ring.
final class PyTorchExampleTests: XCTestCase {
    func testHuggingFaceGPT2FromPyTorchTrainsBesideANativeWorker() throws {
        try requirePython(modules: ["numpy", "torch", "transformers", "safetensors"])
        let dir = try temporaryDirectory()
        let text = EngineLinkCommandTests.repository.appendingPathComponent("Tests/TrainingTests/Fixtures/gpl-3.txt").path
        let tokenizer = dir.appendingPathComponent("tok/tokenizer.json").path, data = dir.appendingPathComponent("data").path
        XCTAssertEqual(try runTributary(["tokenizer", "train", "--input", text, "--vocab-size", "512", "--out", tokenizer]).status, 0)
        XCTAssertEqual(try runTributary(["data", "prepare", "--input", text, "--tokenizer", tokenizer, "--out", data]).status, 0)
        let token = dir.appendingPathComponent("token"), config = dir.appendingPathComponent("run.yaml")
        let run = dir.appendingPathComponent("run")
        try "s3cret\n".write(to: token, atomically: true, encoding: .utf8)
        try """
            model: {vocabSize: 512, contextLength: 32, layers: 2, heads: 2, channels: 32}
            batchSize: 4
            sequenceLength: 32
            steps: 20
            data: {prepared: "\(data)"}
            evaluation: {interval: 10, batches: 2}
            checkpoint: {interval: 10}
            strategy: {name: diloco, innerSteps: 5, codec: fp32, round: steps}
            """.write(to: config, atomically: true, encoding: .utf8)
        let (coordinator, output) = try start(["coordinator", "--listen", "127.0.0.1:0", "--token-file", token.path,
                                               "--config", config.path, "--workers", "2", "--out", run.path])
        let banner = try line(containing: "coordinator on", from: output)
        let address = try XCTUnwrap(banner.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }).trimmingCharacters(in: .punctuationCharacters)

        let saved = dir.appendingPathComponent("torch-final")
        let torch = Process()
        torch.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        torch.arguments = ["python3", EngineLinkCommandTests.repository.appendingPathComponent("examples/pytorch_gpt2.py").path,
                           "--join", address, "--token-file", token.path, "--name", "torch", "--device", "cpu", "--save", saved.path,
                           "--", "--out", run.path, "--threads", "1"] + trusting(run)
        torch.environment = ProcessInfo.processInfo.environment.merging(["TRIBUTARY": tributaryExecutable.path, "OMP_NUM_THREADS": "1"]) { $1 }
        let torchOut = Pipe(), torchErr = dir.appendingPathComponent("torch.err")
        _ = FileManager.default.createFile(atPath: torchErr.path, contents: nil)
        torch.standardOutput = torchOut
        torch.standardError = try FileHandle(forWritingTo: torchErr)
        try torch.run()
        addTeardownBlock { if torch.isRunning { torch.terminate() } }
        let native = try start(["worker", "--join", address, "--token-file", token.path, "--name", "native", "--out", run.path,
                                "--threads", "1"] + trusting(run), errorLog: dir.appendingPathComponent("native.log")).0
        let printed = torchOut.fileHandleForReading.readDataToEndOfFile()
        torch.waitUntilExit()
        native.waitUntilExit()
        let errors = (try? String(contentsOf: torchErr, encoding: .utf8)) ?? ""
        XCTAssertEqual(torch.terminationStatus, 0, errors)
        XCTAssertEqual(native.terminationStatus, 0)
        coordinator.waitUntilExit()

        struct Report: Decodable { var name: String; var round: Int; var loss: Double; var parameterHash: String? }
        let reports = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
        for (round, rows) in Dictionary(grouping: reports, by: \.round) {
            XCTAssertEqual(Set(rows.map(\.name)), ["torch", "native"], "round \(round)")
            XCTAssertEqual(Set(rows.compactMap(\.parameterHash)).count, 1, "round \(round): one shared model")
        }
        // Both engines compute the same function from the same start: their first round's losses agree
        // (different batches of the same text).
        let first = reports.filter { $0.round == 0 }.map(\.loss)
        XCTAssertEqual(first.count, 2)
        XCTAssertEqual(first.min()! / first.max()!, 1, accuracy: 0.03, "\(first)")
        XCTAssertTrue(String(decoding: printed, as: UTF8.self).contains("\"status\": 0"))

        // The PyTorch model ends as the run's shared model: equal, tensor by tensor, to the checkpoint
        // exported to Hugging Face's layout by tributary's own exporter.
        let exported = dir.appendingPathComponent("exported").path
        let export = try runTributary(["export", "--checkpoint", run.path, exported])
        XCTAssertEqual(export.status, 0, export.stderr)
        let compare = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sys
            from safetensors.numpy import load_file
            a = load_file(sys.argv[1] + "/model.safetensors"); b = load_file(sys.argv[2] + "/model.safetensors")
            keys = [k for k in a if not k.endswith("attn.bias") and not k.endswith("masked_bias") and k != "lm_head.weight"]
            different = [k for k in keys if k not in b or a[k].shape != b[k].shape or (a[k] != b[k]).any()]
            print(len(keys), "tensors;", "different:", different)
            sys.exit(1 if different or not keys else 0)
            """, exported, saved.path])
        XCTAssertEqual(compare.status, 0, compare.stdout + compare.stderr)
    }
}

extension XCTestCase {
    /// python3 with these modules, or a skip (a failure under CI, where tools/install-deps.sh installs them).
    func requirePython(modules: [String]) throws {
        let check = try? runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import " + modules.joined(separator: ", ")])
        guard check?.status == 0 else {
            let message = "python3 with \(modules.joined(separator: ", ")) is needed here (tools/install-deps.sh installs them)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
    }
}
