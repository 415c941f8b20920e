// disk_cache.cpp — the on-disk kernel cache: where it lives, keys, atomic writes.
#include "backends/disk_cache.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <system_error>

namespace porta::backend {

std::filesystem::path cache_directory() {
  static const std::filesystem::path directory = [] {
    std::filesystem::path path;
    if (const char* dir = std::getenv("PORTA_CACHE_DIR"); dir != nullptr && *dir != '\0') {
      path = dir;
    } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
      path = std::filesystem::path(xdg) / "porta";
    } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      path = std::filesystem::path(home) / ".cache" / "porta";
    } else {
      return std::filesystem::path();
    }
    std::error_code error;
    std::filesystem::create_directories(path, error);
    return error ? std::filesystem::path() : path;
  }();
  return directory;
}

std::uint64_t stable_hash(const std::vector<std::string_view>& parts) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::string_view part : parts) {
    for (unsigned char byte : part) {
      hash = (hash ^ byte) * 0x100000001b3ull;
    }
    hash = (hash ^ 0xffu) * 0x100000001b3ull;  // separator: ("ab","c") differs from ("a","bc")
  }
  return hash;
}

std::filesystem::path cache_file(std::string_view prefix, std::uint64_t key) {
  std::filesystem::path directory = cache_directory();
  if (directory.empty()) return {};
  char name[32];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(key));
  return directory / (std::string(prefix) + "-" + name + ".bin");
}

std::optional<std::vector<unsigned char>> cache_load(const std::filesystem::path& file) {
  if (file.empty()) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return std::nullopt;
  return bytes;
}

void cache_store(const std::filesystem::path& file, const std::vector<unsigned char>& bytes) {
  if (file.empty() || bytes.empty()) return;
  std::filesystem::path temporary = file;
  temporary += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      return;
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, file, error);
  if (error) std::filesystem::remove(temporary, error);
}

}  // namespace porta::backend
