//! Appendix A's login codes that `tongban_core::Code` has no name for yet, named here.

use tongban_core::Code;

/// 授权码无效: unknown, used or expired state, code, ticket or ID token.
pub const AUTH_CODE_INVALID: Code = Code(10005);
/// 用户信息获取为空.
pub const USER_INFO_EMPTY: Code = Code(10010);
/// 设备 ID 不一致，请重新登录.
pub const DEVICE_MISMATCH: Code = Code(10012);
/// 用户已经存在绑定关系.
pub const ALREADY_BOUND: Code = Code(10013);
/// 身份证与姓名不一致.
pub const ID_NAME_MISMATCH: Code = Code(10014);
/// 未绑定手机号.
pub const PHONE_NOT_BOUND: Code = Code(10015);
/// 身份证姓名校验失败.
pub const ID_CHECK_FAILED: Code = Code(10016);
/// 未查询到数据.
pub const NO_DATA: Code = Code(10022);
/// 用户已解绑数字政务服务账号.
pub const UNBOUND: Code = Code(10023);
/// 手机号未授权.
pub const PHONE_NOT_AUTHORIZED: Code = Code(10024);
/// 人脸校验失败.
pub const FACE_FAILED: Code = Code(10025);
/// 认证失败次数超限，请稍后再试.
pub const TOO_MANY_FAILURES: Code = Code(10027);
