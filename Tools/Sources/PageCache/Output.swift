import Glibc

/// Buffered output to a descriptor with `write(2)`: lines stream out as files are measured,
/// without Foundation and without one system call per line. Flushed when the buffer fills,
/// when asked, and before anything is written to the other stream.
package final class Output {
    // The tool is single-threaded: these are touched only from the main thread.
    nonisolated(unsafe) package static let stdout = Output(fd: STDOUT_FILENO)
    nonisolated(unsafe) package static let stderr = Output(fd: STDERR_FILENO)

    private let fd: CInt
    private var buffer: [UInt8] = []
    /// Flush after every line (a terminal, or stdout read by a waiting script).
    var lineBuffered: Bool
    /// The errno of the first failed write (a full disk, a closed pipe), or 0. Output stops
    /// there; the command reports it and exits with status 1 (``Session/finish``).
    package private(set) var writeError: CInt = 0

    private init(fd: CInt) {
        self.fd = fd
        self.lineBuffered = isatty(fd) == 1 || fd == STDERR_FILENO
        buffer.reserveCapacity(1 << 16)
    }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    package func line(_ text: String) {
        write(text)
        buffer.append(UInt8(ascii: "\n"))
        if lineBuffered || buffer.count >= 1 << 16 { flush() }
    }

    package func flush() {
        var offset = 0
        while offset < buffer.count && writeError == 0 {
            let written = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                writeError = errno  // drop the rest of the output, keep working, fail at the end
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A warning or error line on stderr, after flushing stdout so the two interleave in order.
func warn(_ text: String) {
    Output.stdout.flush()
    Output.stderr.line("mmapkit: " + text)
}

// MARK: - Numbers

extension Int {
    /// `self + other`, or Int.max (Int.min) instead of overflowing: totals of huge sparse files.
    func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? Int.max : Int.min) : sum
    }

    /// `self * other` for non-negative values, or Int.max instead of overflowing.
    func saturatingMultiply(_ other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? Int.max : product
    }
}

/// "1.5 GiB", "12.0 KiB", "512 B".
func humanBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var unit = 0
    var scaled = bytes
    while scaled >= 1024 * 1024 && unit < units.count - 2 {
        scaled /= 1024
        unit += 1
    }
    if bytes < 1024 { return "\(bytes) B" }
    // One decimal of scaled / 1024, rounded.
    let tenths = (scaled * 10 + 512) / 1024
    return "\(tenths / 10).\(tenths % 10) \(units[unit + 1])"
}

/// `part` of `whole` as a percentage with two decimals ("37.50%"); 100% for an empty whole.
func percentText(_ part: Int, of whole: Int) -> String {
    guard whole > 0 else { return "100.00%" }
    let (scaled, overflow) = part.multipliedReportingOverflow(by: 10000)
    let hundredths =
        overflow || scaled > Int.max - whole / 2
        ? Int((Double(part) * 10000 / Double(whole)).rounded()) : (scaled + whole / 2) / whole
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)%"
}

func percentValue(_ part: Int, of whole: Int) -> Double {
    whole == 0 ? 100 : Double(part) * 100 / Double(whole)
}

func padLeft(_ text: String, _ width: Int) -> String {
    let count = text.count
    return count >= width ? text : String(repeating: " ", count: width - count) + text
}

/// Seconds with three significant decimals, without Foundation.
func secondsText(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    let fraction = millis % 1000
    let padded = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
    return "\(millis / 1000).\(padded) s"
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

// MARK: - JSON

/// A JSON object built field by field, without Foundation, so that records stream.
struct JSONObject {
    private(set) var text = "{"
    private var first = true

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += "\"" + name + "\":"
    }

    mutating func add(_ name: String, _ value: Int) {
        key(name)
        text += String(value)
    }

    mutating func add(_ name: String, _ value: Double) {
        key(name)
        text += value.isFinite ? (value == value.rounded() ? String(Int(value)) : String(value)) : "null"
    }

    mutating func add(_ name: String, _ value: String) {
        key(name)
        text += jsonString(value)
    }

    mutating func add(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    mutating func addRaw(_ name: String, _ json: String) {
        key(name)
        text += json
    }

    /// `path`, plus `pathBytes` (base64 of the exact bytes) when the name is not UTF-8: then
    /// `path` is only the escaped display form.
    mutating func add(path: BytePath) {
        if let text = path.utf8String {
            add("path", text)
        } else {
            add("path", path.escaped)
            add("pathBytes", base64(path.bytes))
        }
    }

    var json: String { text + "}" }
}

func jsonString(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value):
            out += "\\u00" + hexByte(UInt8(scalar.value))
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let b0 = Int(bytes[index])
        let b1 = index + 1 < bytes.count ? Int(bytes[index + 1]) : 0
        let b2 = index + 2 < bytes.count ? Int(bytes[index + 2]) : 0
        out.append(alphabet[b0 >> 2])
        out.append(alphabet[((b0 & 3) << 4) | (b1 >> 4)])
        out.append(index + 1 < bytes.count ? alphabet[((b1 & 15) << 2) | (b2 >> 6)] : UInt8(ascii: "="))
        out.append(index + 2 < bytes.count ? alphabet[b2 & 63] : UInt8(ascii: "="))
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}
