import Glibc

/// Replaces this process with the executable `name` from this executable's directory, passing
/// `argv[first...]` after `name` as its arguments. `mmapkit` runs `mmapkit-bench` (for `bench`)
/// and `mmapkit-cli` (for every command line that ``FastCommandLine`` leaves to ArgumentParser)
/// this way. Exits with status 1, naming the build command, if the executable cannot be run.
package func execSibling(_ name: String, arguments first: Int, purpose: String) -> Never {
    var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 64)
    let length = readlink("/proc/self/exe", &target, Int(PATH_MAX))
    if length > 0, let slash = target[0..<length].lastIndex(of: CChar(UInt8(ascii: "/"))) {
        let path = Array("/\(name)".utf8CString)
        target.replaceSubrange(slash..<(slash + path.count), with: path)
        var arguments: [UnsafeMutablePointer<CChar>?] = [strdup(name)]
        for index in first..<Int(CommandLine.argc) { arguments.append(CommandLine.unsafeArgv[index]) }
        arguments.append(nil)
        execv(target, arguments)
    }
    let reason = String(cString: strerror(errno))
    Output.stderr.line(
        "mmapkit: \(purpose) runs \(name) from mmapkit's directory, which failed (\(reason)); build it with "
            + "`swift build -c release --package-path Tools --product \(name)` (make tool does)"
    )
    exit(1)
}
