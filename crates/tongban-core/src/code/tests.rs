use super::*;

/// Table A.1 of T/TAF 144—2023, code and message, as printed in the standard.
const TABLE_A1: &[(u32, &str)] = &[
    (0, "返回成功"),
    (10000, "系统业务繁忙"),
    (10019, "系统业务繁忙，建议稍后重试"),
    (10002, "用户登录已过期"),
    (10003, "已经登入，未验证人脸"),
    (10004, "账号授权过期"),
    (10005, "授权码无效"),
    (10006, "参数 token 不存在"),
    (10007, "数字政务 token 已过期"),
    (10008, "用户未授权"),
    (10009, "授权获取为空"),
    (10010, "用户信息获取为空"),
    (10011, "Openid 获取为空"),
    (10012, "设备 ID 不一致，请重新登录"),
    (10013, "用户已经存在绑定关系"),
    (10014, "身份证与姓名不一致"),
    (10015, "未绑定手机号"),
    (10016, "身份证姓名校验失败"),
    (10017, "用户登录已过期"),
    (10022, "未查询到数据"),
    (10023, "用户已解绑数字政务服务账号"),
    (10024, "手机号未授权"),
    (10025, "人脸校验失败"),
    (10026, "年龄不在查询范围"),
    (10027, "认证失败次数超限，请稍后再试"),
    (17001, "行程信息核验失败"),
    (17002, "二维码已失效或已过期"),
    (20000, "参数错误"),
    (20001, "服务器拒绝请求"),
    (20002, "请求方法不支持"),
    (20003, "参数不能为空"),
    (20004, "参数解密失败"),
    (20404, "404"),
    (30000, "第三方接口请求失败"),
    (30001, "三方系统超时"),
    (30002, "三方系统连接超时"),
    (30003, "三方系统读取超时"),
    (30011, "三方系统数据解析失败"),
    (30012, "三方系统直接返回错误码提示系统异常"),
    (30013, "返回非 200 响应码"),
];

#[test]
fn registry_holds_every_appendix_a_code() {
    let reg = CodeRegistry::new();
    for (code, msg) in TABLE_A1 {
        let def = reg
            .get(*code)
            .unwrap_or_else(|| panic!("code {code} missing"));
        assert!(
            def.msg.starts_with(msg),
            "code {code}: registry says {:?}, standard says {msg:?}",
            def.msg
        );
    }
    assert_eq!(
        reg.len(),
        TABLE_A1.len(),
        "registry holds codes the standard does not list"
    );
}

#[test]
fn statuses_follow_design() {
    assert_eq!(Code::OK.http_status(), StatusCode::OK);
    assert_eq!(Code::BUSY.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(Code::BAD_PARAMETER.http_status(), StatusCode::BAD_REQUEST);
    assert_eq!(Code::LOGIN_EXPIRED.http_status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Code::FACE_REQUIRED.http_status(), StatusCode::FORBIDDEN);
    assert_eq!(Code::NOT_FOUND.http_status(), StatusCode::NOT_FOUND);
    assert_eq!(
        Code::THIRD_PARTY_FAILED.http_status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        Code::THIRD_PARTY_TIMEOUT.http_status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        Code::BUSY_RETRY_LATER.http_status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Business codes outside the table default by range.
    assert_eq!(Code(12345).http_status(), StatusCode::BAD_REQUEST);
}

#[test]
fn business_codes_register_inside_their_block() {
    let mut reg = CodeRegistry::new();
    reg.register("a", 11001, "办件不存在", None)
        .expect("in block a");
    assert_eq!(reg.get(11001).map(|d| d.msg.as_str()), Some("办件不存在"));
    assert_eq!(
        reg.get(11001).map(|d| d.status),
        Some(StatusCode::BAD_REQUEST)
    );
}

#[test]
fn collisions_and_out_of_range_codes_are_refused() {
    let mut reg = CodeRegistry::new();
    reg.register("b", 13001, "first", None).expect("free");
    let before = reg.len();
    assert_eq!(
        reg.register("b", 13001, "second", None),
        Err(RegistryError::Collision {
            code: 13001,
            existing: "first".into()
        })
    );
    assert!(matches!(
        reg.register("d", 17001, "taken by the standard", None),
        Err(RegistryError::Collision { code: 17001, .. })
    ));
    assert!(matches!(
        reg.register("a", 13001, "wrong block", None),
        Err(RegistryError::OutOfBlock {
            code: 13001,
            block: "a",
            ..
        })
    ));
    assert!(matches!(
        reg.register("general", 10500, "services may not add general codes", None),
        Err(RegistryError::UnknownBlock(_))
    ));
    assert!(matches!(
        reg.register("reserved", 19500, "x", None),
        Err(RegistryError::UnknownBlock(_))
    ));
    assert_eq!(
        reg.len(),
        before,
        "a refused registration leaves the registry intact"
    );
    assert_eq!(reg.get(13001).map(|d| d.msg.as_str()), Some("first"));
}

#[test]
fn blocks_cover_the_standard_ranges() {
    assert_eq!(block_of(10500).map(|b| b.name), Some("general"));
    assert_eq!(block_of(11001).map(|b| b.name), Some("a"));
    assert_eq!(block_of(15000).map(|b| b.name), Some("b"));
    assert_eq!(block_of(17000).map(|b| b.name), Some("c"));
    assert_eq!(block_of(19000).map(|b| b.name), Some("d"));
    assert_eq!(block_of(19999).map(|b| b.name), Some("reserved"));
    assert_eq!(block_of(9999), None);
}
