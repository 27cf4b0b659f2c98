// Protobuf refuses to serialise a `string` field that is not UTF-8, and a
// gRPC call that carries one fails with no message at all: a gate given a
// commit or a suite path of other bytes said only "perfgate gate: ".
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace perfgate {

// The path of the first `string` field of `message` (nested messages and
// repeated fields included) that is not well-formed UTF-8, such as
// "suite.cases[0].command[1]", with its value escaped ('\xff'); "" if
// there is none.
std::string FirstNonUtf8Field(const google::protobuf::Message& message);

}  // namespace perfgate
