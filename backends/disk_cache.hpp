// disk_cache.hpp — the on-disk cache of compiled kernels (OpenCL program binaries,
// Vulkan pipeline caches), shared by the backends that compile at run time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porta::backend {

// $PORTA_CACHE_DIR, else $XDG_CACHE_HOME/porta, else $HOME/.cache/porta; empty when
// none can be created (the cache is then off: correct, only slower).
std::filesystem::path cache_directory();

// A stable 64-bit hash (FNV-1a) of the parts, for cache keys.
std::uint64_t stable_hash(const std::vector<std::string_view>& parts);

// "<prefix>-<hash as 16 hex digits>.bin" inside cache_directory().
std::filesystem::path cache_file(std::string_view prefix, std::uint64_t key);

std::optional<std::vector<unsigned char>> cache_load(const std::filesystem::path& file);
// Written to a temporary file then renamed, so a concurrent reader never sees half a
// file; errors are ignored (a read-only disk only costs a recompile next time).
void cache_store(const std::filesystem::path& file, const std::vector<unsigned char>& bytes);

}  // namespace porta::backend
