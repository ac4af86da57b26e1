#include "handlers/router.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

Router Make() { return Router("/callbacks", {"CarrierService", "NiddService"}); }

TEST(RouterTest, ServicePathSelectsItsService) {
  auto m = Make().Route("/callbacks/NiddService");
  EXPECT_EQ(m.kind, Router::Kind::kService);
  EXPECT_EQ(m.service_index, 1u);
}

TEST(RouterTest, QueryStringIsIgnored) {
  EXPECT_EQ(Make().Route("/callbacks/CarrierService?x=1").kind, Router::Kind::kService);
}

TEST(RouterTest, UnknownOrPartialPathsAreNotFound) {
  auto r = Make();
  EXPECT_EQ(r.Route("/callbacks/PromoChanges").kind, Router::Kind::kNotFound);
  EXPECT_EQ(r.Route("/callbacks/").kind, Router::Kind::kNotFound);
  EXPECT_EQ(r.Route("/callbacks").kind, Router::Kind::kNotFound);
  EXPECT_EQ(r.Route("/callbacksX/CarrierService").kind, Router::Kind::kNotFound);
  EXPECT_EQ(r.Route("/callbacks/CarrierService/extra").kind, Router::Kind::kNotFound);
  EXPECT_EQ(r.Route("/callbacks/carrierservice").kind, Router::Kind::kNotFound);
}

TEST(RouterTest, MalformedTargetIsABadRequest) {
  EXPECT_EQ(Make().Route("http://x/callbacks/CarrierService").kind, Router::Kind::kBadTarget);
  EXPECT_EQ(Make().Route("/callbacks/%zz").kind, Router::Kind::kBadTarget);
}

}  // namespace
}  // namespace tscb::handlers
