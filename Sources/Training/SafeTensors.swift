import Basics
import Foundation
import TensorCore

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
    /// Element type as safetensors spells it. F16 and BF16 are read (Hugging Face models often
    /// ship in them) and widened to Float by `floats`.
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32", i32 = "I32", f16 = "F16", bf16 = "BF16"

        /// Bytes per element.
        public var size: Int { self == .f32 || self == .i32 ? 4 : 2 }
    }

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

    /// The elements as floats (F32, or F16/BF16 widened exactly).
    public var floats: [Float] {
        bytes.withUnsafeBytes { raw in
            switch dtype {
            case .f32: return (0..<count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case .f16: return (0..<count).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .bf16: return (0..<count).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
            case .i32: preconditionFailure("[SafeTensor] floats of an I32 tensor")
            }
        }
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
                throw fail("tensor \(name): dtype \(dtypeName) is not supported (\(SafeTensor.DType.allCases.map(\.rawValue).joined(separator: ", ")))")
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
            guard elements * dtype.size == range[1] - range[0] else {
                throw fail("tensor \(name): shape \(shape) needs \(elements * dtype.size) bytes, range has \(range[1] - range[0])")
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

extension SafeTensors {
    /// One tensor to stream to a file: its bytes stay where they are (a slab) until written.
    public struct Entry {
        public let name: String
        public let dtype: SafeTensor.DType
        public let shape: [Int]
        public let bytes: UnsafeRawBufferPointer

        public init(name: String, dtype: SafeTensor.DType = .f32, shape: [Int], bytes: UnsafeRawBufferPointer) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    /// Writes entries (in order) to `url` without building the file in memory, then fsyncs it.
    /// Returns the file's size and CRC32C.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to url: URL) throws -> FileDigest {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw SafeTensorsError(path: url.path, reason: "cannot create file")
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var digest = FileDigest(bytes: 0, crc32c: 0)
        func emit(_ raw: UnsafeRawBufferPointer) throws {
            // Large tensors go out in 16 MB slices so that no copy of a whole tensor is made.
            var start = 0
            repeat {
                let slice = UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + (16 << 20))])
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: slice.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!),
                                                  count: slice.count, deallocator: .none))
                digest.crc32c = CRC32C.checksum(slice, continuing: digest.crc32c)
                digest.bytes += slice.count
                start += slice.count
            } while start < raw.count
        }
        try withUnsafeBytes(of: UInt64(json.count).littleEndian) { try emit($0) }
        try json.withUnsafeBytes { try emit($0) }
        for e in entries { try emit(e.bytes) }
        try handle.synchronize()
        return digest
    }
}

/// Size and CRC32C of a file, recorded so that a damaged file is refused on load.
public struct FileDigest: Codable, Equatable, Sendable {
    public var bytes: Int
    public var crc32c: UInt32

    /// The digest of `data`.
    public init(of data: Data) {
        bytes = data.count
        crc32c = data.withUnsafeBytes { CRC32C.checksum($0) }
    }

    public init(bytes: Int, crc32c: UInt32) {
        self.bytes = bytes
        self.crc32c = crc32c
    }
}
