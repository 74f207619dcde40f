import Basics
import Foundation
import ModelCore
import TensorCore

/// Errors reading or writing a Hugging Face GPT-2 folder.
public struct HuggingFaceError: Error, CustomStringConvertible {
    /// The folder or file involved.
    public let path: String
    /// What was wrong and, where possible, how to fix it.
    public let reason: String

    public var description: String { "\(path): \(reason)" }
}

/// The Hugging Face `transformers` GPT-2 layout (`GPT2LMHeadModel`): `config.json`,
/// `model.safetensors` and `tokenizer.json`.
///
/// GPT-2 builds its projections from `Conv1D`, whose weights are stored (in, out); Tributary
/// stores every matrix (out, in) like a `Linear`, so matrices are transposed both ways. The LM
/// head is tied to the token embedding on both sides.
public enum HuggingFaceGPT2 {
    /// Largest `config.json` read; it is a few hundred bytes in practice.
    static let maxConfigBytes = 1 << 20

    /// The `config.json` fields Tributary writes and reads (others are ignored on import).
    struct Config: Codable {
        var modelType = "gpt2"
        var architectures: [String]? = ["GPT2LMHeadModel"]
        var vocabSize: Int
        var nPositions: Int
        var nCtx: Int?
        var nEmbd: Int
        var nLayer: Int
        var nHead: Int
        var nInner: Int?
        var activationFunction: String? = "gelu_new"
        var layerNormEpsilon: Double? = 1e-5
        var tieWordEmbeddings: Bool?
        var residPdrop: Double? = 0
        var embdPdrop: Double? = 0
        var attnPdrop: Double? = 0
        var scaleAttnWeights: Bool?
        var scaleAttnByInverseLayerIdx: Bool?
        var reorderAndUpcastAttn: Bool?

        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", architectures, vocabSize = "vocab_size", nPositions = "n_positions", nCtx = "n_ctx"
            case nEmbd = "n_embd", nLayer = "n_layer", nHead = "n_head", nInner = "n_inner"
            case activationFunction = "activation_function", layerNormEpsilon = "layer_norm_epsilon"
            case tieWordEmbeddings = "tie_word_embeddings"
            case residPdrop = "resid_pdrop", embdPdrop = "embd_pdrop", attnPdrop = "attn_pdrop"
            case scaleAttnWeights = "scale_attn_weights", scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
            case reorderAndUpcastAttn = "reorder_and_upcast_attn"
        }

        init(_ c: GPTConfig) {
            vocabSize = c.vocabSize
            nPositions = c.contextLength
            nCtx = c.contextLength
            nEmbd = c.channels
            nLayer = c.layers
            nHead = c.heads
            tieWordEmbeddings = true
            scaleAttnWeights = true
            scaleAttnByInverseLayerIdx = false
            reorderAndUpcastAttn = false
        }
    }

    /// A row-major `rows`×`columns` matrix as `columns`×`rows`.
    static func transpose(_ m: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m.count)
        for r in 0..<rows {
            for c in 0..<columns { out[c * rows + r] = m[r * columns + c] }
        }
        return out
    }

    /// Whether Tributary's (out, in) matrix must be transposed for `Conv1D`.
    static func isConv1DWeight(_ t: ParameterTensor) -> Bool {
        t.shape.count == 2 && !t.name.hasPrefix("wte") && !t.name.hasPrefix("wpe")
    }

    /// Writes `config.json` and `model.safetensors` for the model in `parameters` (laid out by
    /// `config`) into `directory`, and copies `tokenizer` there when given.
    public static func export(config: GPTConfig, parameters: UnsafeBufferPointer<Float>, tokenizer: URL?, to directory: URL) throws {
        let layout = ParameterLayout(config: config)
        guard parameters.count == layout.count else {
            throw HuggingFaceError(path: directory.path, reason: "parameter count \(parameters.count) does not match the model's \(layout.count)")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var owned: [(String, [Int], [Float])] = []
        for t in layout.tensors {
            let values = Array(parameters[t.range])
            if isConv1DWeight(t) {
                owned.append(("transformer." + t.name, [t.shape[1], t.shape[0]], transpose(values, rows: t.shape[0], columns: t.shape[1])))
            } else {
                owned.append(("transformer." + t.name, t.shape, values))
            }
        }
        let tensors = owned.map { ($0.0, SafeTensor(floats: $0.2, shape: $0.1)) }
        try writeSynced(try SafeTensors.encode(tensors, metadata: ["format": "pt"]), to: directory.appendingPathComponent("model.safetensors"))
        // transformers defaults bos/eos to GPT-2's 50256, outside a smaller vocabulary; Tributary's
        // tokenizers have no special tokens, so say so with explicit nulls.
        guard var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Config(config))) as? [String: Any] else {
            throw HuggingFaceError(path: directory.path, reason: "config.json could not be built")
        }
        json["bos_token_id"] = NSNull()
        json["eos_token_id"] = NSNull()
        json["dtype"] = "float32"
        let text = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try writeSynced(text, to: directory.appendingPathComponent("config.json"))
        if let tokenizer {
            guard let bytes = try? Data(contentsOf: tokenizer) else {
                throw HuggingFaceError(path: tokenizer.path, reason: "cannot read the tokenizer to copy it")
            }
            try writeSynced(bytes, to: directory.appendingPathComponent("tokenizer.json"))
        }
    }

    /// Reads a `GPT2LMHeadModel` folder: its shape and its parameters in Tributary's layout.
    public static func load(from directory: URL) throws -> (config: GPTConfig, parameters: [Float]) {
        func fail(_ reason: String, _ file: String = "") -> HuggingFaceError {
            HuggingFaceError(path: file.isEmpty ? directory.path : directory.appendingPathComponent(file).path, reason: reason)
        }
        let configURL = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: configURL), data.count <= maxConfigBytes else {
            throw fail("missing or unreadable (or over 1 MB); a Hugging Face model folder needs config.json", "config.json")
        }
        let hf: Config
        do { hf = try JSONDecoder().decode(Config.self, from: data) } catch {
            throw fail("not a GPT-2 config: \(describeDecodingError(error))", "config.json")
        }
        guard hf.modelType == "gpt2" else { throw fail("model_type is '\(hf.modelType)'; only gpt2 can be imported", "config.json") }
        // transformers' GPT2Config defaults: gelu_new, 1e-5.
        let activation = hf.activationFunction ?? "gelu_new", epsilon = hf.layerNormEpsilon ?? 1e-5
        guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
            throw fail("activation_function '\(activation)' is not the tanh GELU (gelu_new) Tributary computes", "config.json")
        }
        guard abs(epsilon - 1e-5) < 1e-12 else {
            throw fail("layer_norm_epsilon \(epsilon) differs from Tributary's 1e-5", "config.json")
        }
        guard hf.nInner == nil || hf.nInner == 4 * hf.nEmbd else { throw fail("n_inner \(hf.nInner!) must be 4 × n_embd", "config.json") }
        guard hf.tieWordEmbeddings != false else { throw fail("tie_word_embeddings is false; Tributary ties the LM head to wte", "config.json") }
        guard hf.scaleAttnWeights != false, hf.scaleAttnByInverseLayerIdx != true else {
            throw fail("attention scaling other than 1/sqrt(head size) is not supported", "config.json")
        }
        let config = GPTConfig(vocabSize: hf.vocabSize, contextLength: hf.nPositions, layers: hf.nLayer, heads: hf.nHead, channels: hf.nEmbd)
        do { try config.validate() } catch { throw fail("\(error)", "config.json") }
        let layout = ParameterLayout(config: config)
        guard layout.count <= 1 << 31 else { throw fail("the model has \(layout.count) parameters, more than this build loads", "config.json") }

        let file = "model.safetensors"
        let tensors = try SafeTensors.read(contentsOf: directory.appendingPathComponent(file)).tensors
        // Some GPT-2 checkpoints omit the `transformer.` prefix; the causal-mask buffers
        // (`attn.bias`, `attn.masked_bias`) of old exports carry no parameters.
        var byName: [String: SafeTensor] = [:]
        for (key, tensor) in tensors {
            let name = key.hasPrefix("transformer.") ? String(key.dropFirst("transformer.".count)) : key
            byName[name] = tensor
        }
        var parameters = [Float](repeating: 0, count: layout.count)
        var used: Set<String> = []
        for t in layout.tensors {
            guard let tensor = byName[t.name] else { throw fail("tensor transformer.\(t.name) is missing", file) }
            guard tensor.dtype != .i32 else { throw fail("tensor \(t.name) is I32; expected floats", file) }
            let conv = isConv1DWeight(t)
            let expected = conv ? [t.shape[1], t.shape[0]] : t.shape
            guard tensor.shape == expected else { throw fail("tensor \(t.name) has shape \(tensor.shape); config.json implies \(expected)", file) }
            let values = tensor.floats
            parameters.replaceSubrange(t.range, with: conv ? transpose(values, rows: t.shape[1], columns: t.shape[0]) : values)
            used.insert(t.name)
        }
        if let head = byName["lm_head.weight"] {
            let wte = layout.tensors[0]
            guard head.shape == wte.shape, head.floats == Array(parameters[wte.range]) else {
                throw fail("lm_head.weight differs from wte.weight; Tributary needs the tied LM head GPT-2 uses", file)
            }
            used.insert("lm_head.weight")
        }
        let extra = byName.keys.filter { !used.contains($0) && !$0.hasSuffix("attn.bias") && !$0.hasSuffix("attn.masked_bias") }
        guard extra.isEmpty else { throw fail("unexpected tensors \(extra.sorted().prefix(5).joined(separator: ", ")); is this a GPT-2 model?", file) }
        return (config, parameters)
    }
}
