import Glibc
import PageCache

// `mmapkit`: MmapKit's command-line tool, kept lean so that the page-cache commands start about
// as fast and as small as vmtouch (statically linked by `make tool`; no Foundation, no
// ArgumentParser). A valid page-cache command line is parsed here by FastCommandLine and run in
// this process. Everything else is another executable built beside this one and run through
// exec before anything else is initialised: `bench` is `mmapkit-bench` (it links Foundation,
// one of the implementations it measures), and every other line (help, version, usage errors,
// spellings FastCommandLine leaves alone) is `mmapkit-cli`, the same commands defined with
// ArgumentParser.

if CommandLine.argc > 1, let first = CommandLine.unsafeArgv[1], strcmp(first, "bench") == 0 {
    execSibling("mmapkit-bench", arguments: 2, purpose: "bench")
}
// Test hook: MMAPKIT_TEST_PARSER=argument-parser skips FastCommandLine, =fast requires it.
let parser = getenv("MMAPKIT_TEST_PARSER").map { String(cString: $0) }
if parser != "argument-parser", let command = FastCommandLine(RawArguments.forParsing()) {
    command.run()
}
if parser == "fast" {
    Output.stderr.line("mmapkit: MMAPKIT_TEST_PARSER=fast, but ArgumentParser has to parse this line")
    exit(99)
}
execSibling("mmapkit-cli", arguments: 1, purpose: "help, version and usage errors")
