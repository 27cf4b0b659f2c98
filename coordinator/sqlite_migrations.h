// The SQLite store's schema as versioned migrations: migration N brings a
// database from version N to N+1. Append only: a database of any earlier
// version converts; tests build one of an old version from the first N.
#pragma once

#include <span>

namespace perfgate {

// Migration 5 (to version 6) calls the functions RegisterCompactFunctions adds
// (sqlite_compact.h), so they run on a connection that has them.
std::span<const char* const> SqliteMigrations();

}  // namespace perfgate
