#include "handlers/template.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>

namespace tscb::handlers {
namespace json = boost::json;

FieldPath SplitPath(const std::string& dotted) {
  FieldPath out;
  std::size_t start = 0;
  while (true) {
    auto dot = dotted.find('.', start);
    out.push_back(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

const json::value* Lookup(const json::value& root, const FieldPath& path) {
  const json::value* at = &root;
  for (const auto& seg : path) {
    if (auto* o = at->if_object()) {
      at = o->if_contains(seg);
    } else if (auto* a = at->if_array()) {
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), index);
      if (ec != std::errc() || end != seg.data() + seg.size() || index >= a->size()) return nullptr;
      at = &(*a)[index];
    } else {
      return nullptr;
    }
    if (!at) return nullptr;
  }
  return at;
}

struct Template::Node {
  enum class Type { kLiteral, kWhole, kText, kObject, kArray } type = Type::kLiteral;
  json::value literal;                              // kLiteral
  FieldPath path;                                   // kWhole
  std::string path_text;                            // kWhole, for messages
  std::vector<std::pair<std::string, bool>> parts;  // kText: (text, is a path)
  std::vector<FieldPath> part_paths;                // kText: per part (empty for text)
  // kObject: member names and their values (two vectors: a pair holding
  // the incomplete Node is not portable).
  std::vector<std::string> keys;
  std::vector<Node> values;
  std::vector<Node> items;  // kArray
};

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

bool ValidPath(const std::string& p) {
  if (p.empty() || p.front() == '.' || p.back() == '.' || p.find("..") != std::string::npos)
    return false;
  for (char c : p)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

std::string Text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

}  // namespace

static Template::Node CompileNode(const json::value& v, const std::string& where,
                                  const Template::PathCheck& check,
                                  std::vector<std::string>& errors) {
  Template::Node n;
  if (auto* o = v.if_object()) {
    n.type = Template::Node::Type::kObject;
    for (const auto& [key, value] : *o) {
      n.keys.emplace_back(key);
      n.values.push_back(CompileNode(value, where + "." + std::string(key), check, errors));
    }
    return n;
  }
  if (auto* a = v.if_array()) {
    n.type = Template::Node::Type::kArray;
    for (std::size_t i = 0; i < a->size(); ++i)
      n.items.push_back(CompileNode((*a)[i], where + "[" + std::to_string(i) + "]", check, errors));
    return n;
  }
  if (!v.is_string() || v.as_string().find("{{") == json::string::npos) {
    n.literal = v;
    return n;
  }
  // Split "text {{ path }} text" into parts.
  const std::string s(v.as_string());
  std::size_t at = 0;
  while (at < s.size()) {
    auto open = s.find("{{", at);
    if (open == std::string::npos) {
      n.parts.emplace_back(s.substr(at), false);
      break;
    }
    if (open > at) n.parts.emplace_back(s.substr(at, open - at), false);
    auto close = s.find("}}", open + 2);
    if (close == std::string::npos) {
      errors.push_back(where + ": '{{' without '}}'");
      return n;
    }
    std::string path = Trim(s.substr(open + 2, close - open - 2));
    if (!ValidPath(path)) {
      errors.push_back(where + ": '{{ " + path +
                       " }}' is not a field path (letters, digits, _ and dots)");
    } else if (auto why = check ? check(SplitPath(path)) : std::string(); !why.empty()) {
      errors.push_back(where + ": {{ " + path + " }}: " + why);
    }
    n.parts.emplace_back(path, true);
    at = close + 2;
  }
  for (const auto& [text, is_path] : n.parts)
    n.part_paths.push_back(is_path ? SplitPath(text) : FieldPath{});
  if (n.parts.size() == 1 && n.parts[0].second) {
    n.type = Template::Node::Type::kWhole;
    n.path = n.part_paths[0];
    n.path_text = n.parts[0].first;
  } else {
    n.type = Template::Node::Type::kText;
  }
  return n;
}

static json::value RenderNode(const Template::Node& n, const json::value& ctx, std::string& error) {
  using Type = Template::Node::Type;
  switch (n.type) {
    case Type::kLiteral:
      return n.literal;
    case Type::kWhole: {
      auto* v = Lookup(ctx, n.path);
      if (!v || v->is_null()) {
        if (error.empty()) error = "no value for {{ " + n.path_text + " }}";
        return nullptr;
      }
      return *v;
    }
    case Type::kText: {
      std::string out;
      for (std::size_t i = 0; i < n.parts.size(); ++i) {
        if (!n.parts[i].second) {
          out += n.parts[i].first;
          continue;
        }
        auto* v = Lookup(ctx, n.part_paths[i]);
        if (!v || v->is_null()) {
          if (error.empty()) error = "no value for {{ " + n.parts[i].first + " }}";
          return nullptr;
        }
        out += Text(*v);
      }
      return json::string(out);
    }
    case Type::kObject: {
      json::object o;
      for (std::size_t i = 0; i < n.keys.size(); ++i)
        o[n.keys[i]] = RenderNode(n.values[i], ctx, error);
      return o;
    }
    case Type::kArray: {
      json::array a;
      for (const auto& child : n.items) a.push_back(RenderNode(child, ctx, error));
      return a;
    }
  }
  return nullptr;
}

Template Template::Compile(const json::value& source, const std::string& where,
                           const PathCheck& check, std::vector<std::string>& errors) {
  Template t;
  t.root_ = std::make_shared<const Node>(CompileNode(source, where, check, errors));
  return t;
}

json::value Template::Render(const json::value& context, std::string& error) const {
  if (!root_) return nullptr;
  std::string why;
  json::value out = RenderNode(*root_, context, why);
  if (!why.empty()) {
    error = why;
    return nullptr;
  }
  return out;
}

std::string Template::RenderText(const json::value& context, std::string& error) const {
  json::value v = Render(context, error);
  return error.empty() ? Text(v) : std::string();
}

}  // namespace tscb::handlers
