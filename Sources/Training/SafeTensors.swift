import Foundation

/// Errors reading or writing a safetensors file.
public struct SafeTensorsError: Error, CustomStringConvertible {
    /// The file involved, if any.
    public let path: String
    /// What was wrong.
    public let reason: String

    public var description: String { "safetensors \(path): \(reason)" }
}

/// A tensor read from or written to a safetensors file.
public struct SafeTensor: Sendable {
    /// Element type as safetensors spells it: "F32" or "I32".
    public enum DType: String, Sendable { case f32 = "F32", i32 = "I32" }

    public let dtype: DType
    public let shape: [Int]
    /// Raw little-endian bytes.
    public let bytes: Data

    /// A float tensor.
    public init(floats: [Float], shape: [Int]) {
        self.dtype = .f32
        self.shape = shape
        self.bytes = floats.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    /// An int32 tensor.
    public init(ints: [Int32], shape: [Int]) {
        self.dtype = .i32
        self.shape = shape
        self.bytes = ints.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    init(dtype: DType, shape: [Int], bytes: Data) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The elements as floats (F32 only).
    public var floats: [Float] {
        precondition(dtype == .f32, "[SafeTensor] floats of a \(dtype.rawValue) tensor")
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The elements as int32 (I32 only).
    public var ints: [Int32] {
        precondition(dtype == .i32, "[SafeTensor] ints of a \(dtype.rawValue) tensor")
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    }
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data.
public enum SafeTensors {
    /// Largest header accepted, in bytes; bounds what a hostile file can make us allocate.
    public static let maxHeaderBytes = 64 << 20

    /// Parses a whole file held in memory.
    public static func decode(_ data: Data, path: String = "<memory>") throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        guard headerLength <= UInt64(maxHeaderBytes), Int(headerLength) <= data.count - 8 else {
            throw fail("header length \(headerLength) exceeds the file (\(data.count) bytes) or the \(maxHeaderBytes)-byte limit; the file is truncated or not safetensors")
        }
        let start = data.startIndex
        let headerData = data[(start + 8)..<(start + 8 + Int(headerLength))]
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let body = data[(start + 8 + Int(headerLength))...]
        var tensors: [String: SafeTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let range = entry["data_offsets"] as? [Int], range.count == 2
            else { throw fail("tensor \(name): entry needs dtype, shape and data_offsets") }
            guard let dtype = SafeTensor.DType(rawValue: dtypeName) else {
                throw fail("tensor \(name): dtype \(dtypeName) is not supported (F32, I32)")
            }
            guard shape.allSatisfy({ $0 >= 0 }), range[0] >= 0, range[0] <= range[1], range[1] <= body.count else {
                throw fail("tensor \(name): byte range \(range) or shape \(shape) is outside the \(body.count)-byte body")
            }
            var elements = 1
            for dim in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw fail("tensor \(name): shape \(shape) overflows") }
                elements = product
            }
            guard elements * 4 == range[1] - range[0] else {
                throw fail("tensor \(name): shape \(shape) needs \(elements * 4) bytes, range has \(range[1] - range[0])")
            }
            let bytes = Data(body[(body.startIndex + range[0])..<(body.startIndex + range[1])])
            tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: bytes)
        }
        return (tensors, metadata)
    }

    /// Reads and parses a file.
    public static func read(contentsOf url: URL) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw SafeTensorsError(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, path: url.path)
    }

    /// Serialises tensors (in the given order) and metadata.
    public static func encode(_ tensors: [(String, SafeTensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, tensor) in tensors {
            header[name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + tensor.bytes.count]]
            offset += tensor.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, tensor) in tensors { out.append(tensor.bytes) }
        return out
    }
}
