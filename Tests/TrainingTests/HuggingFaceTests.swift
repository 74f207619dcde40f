import Foundation
import ModelCore
import TensorCore
import XCTest
import Training

/// Export to and import from the `transformers` GPT-2 layout, against fixtures written by
/// tools/hf_reference.py with `transformers` itself.
final class HuggingFaceTests: XCTestCase {
    /// Tributary's logits for `tokens` with the given parameters.
    private func logits(config: GPTConfig, parameters: UnsafeBufferPointer<Float>, tokens: [Int32]) throws -> [Float] {
        let model = try GPT(config: config, maxBatch: 1, maxLength: tokens.count, parallelism: Parallelism(threads: 2))
        model.parameters.buffer.baseAddress!.update(from: parameters.baseAddress!, count: parameters.count)
        try tokens.withUnsafeBufferPointer { _ = try model.forward(tokens: $0, targets: nil, batch: 1, length: tokens.count) }
        return Array(model.logits)
    }

    private func assertClose(_ ours: [Float], _ theirs: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, theirs.count, file: file, line: line)
        let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(worst, 1e-4, "largest logit difference from transformers", file: file, line: line)
        XCTAssertGreaterThan(theirs.map(abs).max() ?? 0, 0.5, "the fixture's logits should not be trivially small", file: file, line: line)
    }

    /// A model saved by `transformers` imports and gives its logits.
    func testImportGivesTransformersLogits() throws {
        let (config, parameters) = try HuggingFaceGPT2.load(from: fixture("hf/import-model"))
        XCTAssertEqual(config, GPTConfig(vocabSize: 101, contextLength: 32, layers: 2, heads: 4, channels: 32))
        let reference = try SafeTensors.read(contentsOf: fixture("hf/import-logits.safetensors")).tensors
        let ours = try parameters.withUnsafeBufferPointer {
            try logits(config: config, parameters: $0, tokens: reference["tokens"]!.ints)
        }
        assertClose(ours, reference["logits"]!.floats)
    }

    /// Importing and exporting again gives every tensor back bit for bit.
    func testImportThenExportRoundTrips() throws {
        let source = try fixture("hf/import-model")
        let (config, parameters) = try HuggingFaceGPT2.load(from: source)
        let out = try temporaryDirectory().appendingPathComponent("export")
        try parameters.withUnsafeBufferPointer { try HuggingFaceGPT2.export(config: config, parameters: $0, tokenizer: nil, to: out) }
        let original = try SafeTensors.read(contentsOf: source.appendingPathComponent("model.safetensors")).tensors
        let exported = try SafeTensors.read(contentsOf: out.appendingPathComponent("model.safetensors")).tensors
        XCTAssertEqual(Set(exported.keys), Set(original.keys.filter { $0 != "lm_head.weight" }))
        for (name, tensor) in exported {
            XCTAssertEqual(tensor.shape, original[name]!.shape, name)
            XCTAssertEqual(tensor.bytes, original[name]!.bytes, name)
        }
    }

    /// A Tributary checkpoint exports to exactly the files `transformers` was shown, and
    /// `transformers`' logits on them equal Tributary's.
    func testExportLoadsInTransformersWithTheSameLogits() throws {
        let checkpoint = try fixture("hf/export-checkpoint")
        let (model, _) = try CheckpointStore.loadModel(from: checkpoint, parallelism: .serial)
        let out = try temporaryDirectory().appendingPathComponent("export")
        try HuggingFaceGPT2.export(config: model.config, parameters: UnsafeBufferPointer(model.parameters.buffer), tokenizer: nil, to: out)
        let expected = try fixture("hf/export-expected")
        for file in ["model.safetensors", "config.json"] {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(file)), try Data(contentsOf: expected.appendingPathComponent(file)),
                           "\(file) differs from what transformers loaded")
        }
        let reference = try SafeTensors.read(contentsOf: fixture("hf/export-logits.safetensors")).tensors
        let ours = try logits(config: model.config, parameters: UnsafeBufferPointer(model.parameters.buffer), tokens: reference["tokens"]!.ints)
        assertClose(ours, reference["logits"]!.floats)
    }

    /// Damaged or foreign folders are refused with the file and the reason.
    func testBadFoldersAreRefusedWithReasons() throws {
        let source = try fixture("hf/import-model")
        func attempt(_ edit: (URL) throws -> Void) throws -> String {
            let copy = try temporaryDirectory().appendingPathComponent("model")
            try FileManager.default.copyItem(at: source, to: copy)
            try edit(copy)
            do {
                _ = try HuggingFaceGPT2.load(from: copy)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        func editConfig(_ change: @escaping (inout [String: Any]) -> Void) -> (URL) throws -> Void {
            { folder in
                let url = folder.appendingPathComponent("config.json")
                var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                change(&json)
                try JSONSerialization.data(withJSONObject: json).write(to: url)
            }
        }
        XCTAssertTrue(try attempt { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) }.contains("config.json"))
        XCTAssertTrue(try attempt(editConfig { $0["model_type"] = "llama" }).contains("only gpt2"))
        XCTAssertTrue(try attempt(editConfig { $0["activation_function"] = "relu" }).contains("activation_function"))
        XCTAssertTrue(try attempt(editConfig { $0["n_head"] = 5 }).contains("heads"))
        XCTAssertTrue(try attempt(editConfig { $0.removeValue(forKey: "n_embd") }).contains("n_embd"))
        XCTAssertTrue(try attempt(editConfig { $0["n_layer"] = 3 }).contains("transformer.h.2"))
        XCTAssertTrue(try attempt(editConfig { $0["vocab_size"] = 102 }).contains("shape"))
        let truncated = try attempt { folder in
            let url = folder.appendingPathComponent("model.safetensors")
            try Data(contentsOf: url).prefix(5000).write(to: url)
        }
        XCTAssertTrue(truncated.contains("model.safetensors"), truncated)
    }
}
