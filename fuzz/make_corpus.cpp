// Writes the seed corpora of every fuzz target: sdmp_fuzz_make_corpus <dir> creates
// <dir>/<target>/<seed> (fuzz/corpus/ in the repository). Seeds come from the same fixtures the
// targets use (targets.cpp), so valid seeds stay valid for them.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "targets.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    const std::filesystem::path root = argv[1];
    std::size_t total = 0;
    for (const sdmp::fuzz::Target& target : sdmp::fuzz::all_targets()) {
        const std::filesystem::path dir = root / std::string(target.name);
        std::filesystem::create_directories(dir);
        for (const sdmp::fuzz::Seed& seed : sdmp::fuzz::make_seeds(target.name)) {
            std::ofstream out(dir / seed.name, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(seed.bytes.data()),
                      static_cast<std::streamsize>(seed.bytes.size()));
            if (!out) {
                std::fprintf(stderr, "cannot write %s\n", (dir / seed.name).c_str());
                return 1;
            }
            ++total;
        }
    }
    std::printf("wrote %zu seeds under %s\n", total, root.c_str());
    return 0;
}
