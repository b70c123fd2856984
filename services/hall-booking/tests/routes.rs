//! The gateway routes the service hands the platform: each one a valid `RouteSpec` of the
//! gateway (URL rules, levels, limits), and every endpoint of the service reached through the
//! route with its level and signature.

use http::Method;
use tongban_core::AuthLevel;
use tongban_gateway::RouteSpec;
use tongban_gateway::route::{Match, Table};

#[test]
fn every_endpoint_has_its_route_level_and_signature() {
    let specs: Vec<RouteSpec> = tongban_hall_booking::routes()
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a route the gateway reads"))
        .collect();
    let mut ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), specs.len(), "route ids are unique");
    let table = Table::new(
        specs
            .iter()
            .map(|s| (s.validate().expect("the gateway accepts it"), s))
            .collect(),
    );
    for s in &specs {
        assert_eq!(s.upstream.service.as_deref(), Some("hall-booking"));
    }
    let id = "0123456789abcdef0123456789abcdef";
    for (method, path, level, signed) in [
        (
            Method::GET,
            "/api/v1/service-halls".to_owned(),
            AuthLevel::Anonymous,
            false,
        ),
        (
            Method::GET,
            "/api/v1/service-halls/dongsi/time-slots".to_owned(),
            AuthLevel::Anonymous,
            false,
        ),
        (
            Method::GET,
            "/api/v1/bookings".to_owned(),
            AuthLevel::RealName,
            false,
        ),
        (
            Method::POST,
            "/api/v1/bookings".to_owned(),
            AuthLevel::FaceVerified,
            true,
        ),
        (
            Method::DELETE,
            format!("/api/v1/bookings/{id}"),
            AuthLevel::FaceVerified,
            true,
        ),
    ] {
        match table.find(None, &method, &path) {
            Match::Found(route) => {
                assert_eq!(route.auth, Some(level), "{method} {path}");
                assert_eq!(route.signed, signed, "{method} {path}");
            }
            _ => panic!("no route for {method} {path}"),
        }
    }
    // Nothing else reaches the service.
    assert!(matches!(
        table.find(None, &Method::PUT, "/api/v1/bookings"),
        Match::WrongMethod
    ));
    assert!(matches!(
        table.find(None, &Method::GET, "/api/v1/applications"),
        Match::None
    ));
    // Another registry name gives the same routes for that service.
    for v in tongban_hall_booking::routes_for("hall-booking-2") {
        assert_eq!(v["upstream"]["service"], "hall-booking-2");
    }
}
