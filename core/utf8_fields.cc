#include "core/utf8_fields.h"

#include "absl/strings/str_cat.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// `path` and the escaped value of a string that is not UTF-8; "" if `value` is.
std::string Named(const std::string& path, const std::string& value) {
  if (IsValidUtf8(value)) return "";
  return absl::StrCat(path, " ('", EscapeControls(value.substr(0, 200)), "')");  // bytes as \xNN, controls too
}

std::string FirstIn(const Message& message, const std::string& prefix) {
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string name = prefix + field->name();
    const bool is_string = field->type() == FieldDescriptor::TYPE_STRING;
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!is_string && !is_message) continue;
    if (!field->is_repeated()) {
      std::string found = is_string ? Named(name, reflection->GetString(message, field))
                                    : FirstIn(reflection->GetMessage(message, field), name + ".");
      if (!found.empty()) return found;
      continue;
    }
    for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
      const std::string item = absl::StrCat(name, "[", i, "]");
      std::string found = is_string ? Named(item, reflection->GetRepeatedString(message, field, i))
                                    : FirstIn(reflection->GetRepeatedMessage(message, field, i), item + ".");
      if (!found.empty()) return found;
    }
  }
  return "";
}

}  // namespace

std::string FirstNonUtf8Field(const Message& message) { return FirstIn(message, ""); }

}  // namespace perfgate
