//! Response codes of Appendix A: the built-in table, the business blocks, and a registry that
//! refuses collisions and out-of-range codes when services add their own.

use std::collections::BTreeMap;
use std::fmt;

use http::StatusCode;

/// A response code as carried in the envelope's `code` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(pub u32);

/// One registered code: its number, default user-facing message and HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeDef {
    pub code: Code,
    pub msg: String,
    pub status: StatusCode,
}

/// A range of codes from Appendix A, inclusive at both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub name: &'static str,
    pub first: u32,
    pub last: u32,
}

/// Errors when a service registers its codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("code {code} is already registered as {existing:?}")]
    Collision { code: u32, existing: String },
    #[error("code {code} is outside block {block} ({first}–{last})")]
    OutOfBlock {
        code: u32,
        block: &'static str,
        first: u32,
        last: u32,
    },
    #[error("unknown code block {0:?}; expected one of: a, b, c, d")]
    UnknownBlock(String),
}

// === impl Code ===

impl Code {
    pub const OK: Code = Code(0);
    pub const BUSY: Code = Code(10000);
    pub const LOGIN_EXPIRED: Code = Code(10002);
    pub const FACE_REQUIRED: Code = Code(10003);
    pub const TOKEN_MISSING: Code = Code(10006);
    pub const PLATFORM_TOKEN_EXPIRED: Code = Code(10007);
    pub const NOT_AUTHORIZED: Code = Code(10008);
    pub const SESSION_EXPIRED: Code = Code(10017);
    pub const BUSY_RETRY_LATER: Code = Code(10019);
    pub const BAD_PARAMETER: Code = Code(20000);
    pub const REFUSED: Code = Code(20001);
    pub const METHOD_NOT_SUPPORTED: Code = Code(20002);
    pub const PARAMETER_MISSING: Code = Code(20003);
    pub const DECRYPT_FAILED: Code = Code(20004);
    pub const NOT_FOUND: Code = Code(20404);
    pub const THIRD_PARTY_FAILED: Code = Code(30000);
    pub const THIRD_PARTY_TIMEOUT: Code = Code(30001);
    pub const THIRD_PARTY_CONNECT_TIMEOUT: Code = Code(30002);
    pub const THIRD_PARTY_READ_TIMEOUT: Code = Code(30003);
    pub const THIRD_PARTY_BAD_DATA: Code = Code(30011);
    pub const THIRD_PARTY_ERROR_CODE: Code = Code(30012);
    pub const THIRD_PARTY_NON_200: Code = Code(30013);

    /// The built-in definition, if this is one of Appendix A's codes.
    pub fn builtin(self) -> Option<&'static BuiltinCode> {
        BUILTIN.iter().find(|b| b.code == self.0)
    }

    /// The default message: Appendix A's text for built-in codes.
    pub fn default_msg(self) -> &'static str {
        self.builtin().map_or("系统业务繁忙", |b| b.msg)
    }

    /// The HTTP status DESIGN.md assigns to this code (used unless "always 200" is on).
    pub fn http_status(self) -> StatusCode {
        if let Some(b) = self.builtin() {
            return b.status;
        }
        status_for_range(self.0)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A code of Appendix A, table A.1, with its message as the standard words it.
#[derive(Debug, PartialEq, Eq)]
pub struct BuiltinCode {
    pub code: u32,
    pub msg: &'static str,
    pub status: StatusCode,
}

const fn b(code: u32, msg: &'static str, status: StatusCode) -> BuiltinCode {
    BuiltinCode { code, msg, status }
}

const OK: StatusCode = StatusCode::OK;
const BAD: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTH: StatusCode = StatusCode::UNAUTHORIZED;
const FORBID: StatusCode = StatusCode::FORBIDDEN;
const ISE: StatusCode = StatusCode::INTERNAL_SERVER_ERROR;
const UNAVAIL: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
const BADGW: StatusCode = StatusCode::BAD_GATEWAY;
const GWTO: StatusCode = StatusCode::GATEWAY_TIMEOUT;

/// Every code that table A.1 lists, in the table's order.
pub static BUILTIN: &[BuiltinCode] = &[
    b(0, "返回成功", OK),
    b(10000, "系统业务繁忙", ISE),
    b(10019, "系统业务繁忙，建议稍后重试", UNAVAIL),
    b(10002, "用户登录已过期", UNAUTH),
    b(10003, "已经登入，未验证人脸", FORBID),
    b(10004, "账号授权过期", UNAUTH),
    b(10005, "授权码无效", UNAUTH),
    b(10006, "参数 token 不存在", UNAUTH),
    b(10007, "数字政务 token 已过期", UNAUTH),
    b(10008, "用户未授权", FORBID),
    b(10009, "授权获取为空", UNAUTH),
    b(10010, "用户信息获取为空", UNAUTH),
    b(10011, "Openid 获取为空", UNAUTH),
    b(10012, "设备 ID 不一致，请重新登录", UNAUTH),
    b(10013, "用户已经存在绑定关系", FORBID),
    b(10014, "身份证与姓名不一致", BAD),
    b(10015, "未绑定手机号", FORBID),
    b(10016, "身份证姓名校验失败", BAD),
    b(10017, "用户登录已过期，请重新登录", UNAUTH),
    b(10022, "未查询到数据", OK),
    b(10023, "用户已解绑数字政务服务账号", FORBID),
    b(10024, "手机号未授权", FORBID),
    b(10025, "人脸校验失败", FORBID),
    b(
        10026,
        "年龄不在查询范围，请使用‘帮他人领取防疫健康信息码’",
        BAD,
    ),
    b(
        10027,
        "认证失败次数超限，请稍后再试",
        StatusCode::TOO_MANY_REQUESTS,
    ),
    b(17001, "行程信息核验失败", BAD),
    b(17002, "二维码已失效或已过期", BAD),
    b(20000, "参数错误", BAD),
    b(20001, "服务器拒绝请求", FORBID),
    b(20002, "请求方法不支持", StatusCode::METHOD_NOT_ALLOWED),
    b(20003, "参数不能为空", BAD),
    b(20004, "参数解密失败", BAD),
    b(20404, "404", StatusCode::NOT_FOUND),
    b(30000, "第三方接口请求失败", BADGW),
    b(30001, "三方系统超时", GWTO),
    b(30002, "三方系统连接超时", GWTO),
    b(30003, "三方系统读取超时", GWTO),
    b(30011, "三方系统数据解析失败", BADGW),
    b(30012, "三方系统直接返回错误码提示系统异常", BADGW),
    b(30013, "返回非 200 响应码", BADGW),
];

/// The ranges of table A.1.
pub static BLOCKS: &[Block] = &[
    Block {
        name: "general",
        first: 10000,
        last: 11000,
    },
    Block {
        name: "a",
        first: 11001,
        last: 13000,
    },
    Block {
        name: "b",
        first: 13001,
        last: 15000,
    },
    Block {
        name: "c",
        first: 15001,
        last: 17000,
    },
    Block {
        name: "d",
        first: 17001,
        last: 19000,
    },
    Block {
        name: "reserved",
        first: 19001,
        last: 19999,
    },
    Block {
        name: "client",
        first: 20000,
        last: 29999,
    },
    Block {
        name: "third_party",
        first: 30000,
        last: 39999,
    },
];

/// The status of a code that is not built in: business codes are input problems by default.
fn status_for_range(code: u32) -> StatusCode {
    match code {
        0 => OK,
        10000..=11000 => ISE,
        11001..=19000 => BAD,
        20000..=29999 => BAD,
        30000..=39999 => BADGW,
        _ => ISE,
    }
}

/// The block a code falls in, if any.
pub fn block_of(code: u32) -> Option<&'static Block> {
    BLOCKS.iter().find(|b| (b.first..=b.last).contains(&code))
}

/// Every code in force in one deployment: Appendix A's plus what services registered.
#[derive(Clone, Debug)]
pub struct CodeRegistry {
    codes: BTreeMap<u32, CodeDef>,
}

// === impl CodeRegistry ===

impl Default for CodeRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CodeRegistry {
    /// A registry holding exactly the codes of Appendix A.
    pub fn new() -> Self {
        let codes = BUILTIN
            .iter()
            .map(|b| {
                (
                    b.code,
                    CodeDef {
                        code: Code(b.code),
                        msg: b.msg.to_owned(),
                        status: b.status,
                    },
                )
            })
            .collect();
        Self { codes }
    }

    /// Registers a business code inside one of the blocks `a`–`d`; 17001 and 17002 are taken.
    pub fn register(
        &mut self,
        block: &str,
        code: u32,
        msg: &str,
        status: Option<StatusCode>,
    ) -> Result<(), RegistryError> {
        let blk = BLOCKS
            .iter()
            .find(|b| b.name == block && matches!(b.name, "a" | "b" | "c" | "d"))
            .ok_or_else(|| RegistryError::UnknownBlock(block.to_owned()))?;
        if !(blk.first..=blk.last).contains(&code) {
            return Err(RegistryError::OutOfBlock {
                code,
                block: blk.name,
                first: blk.first,
                last: blk.last,
            });
        }
        if let Some(existing) = self.codes.get(&code) {
            return Err(RegistryError::Collision {
                code,
                existing: existing.msg.clone(),
            });
        }
        self.codes.insert(
            code,
            CodeDef {
                code: Code(code),
                msg: msg.to_owned(),
                status: status.unwrap_or_else(|| status_for_range(code)),
            },
        );
        Ok(())
    }

    pub fn get(&self, code: u32) -> Option<&CodeDef> {
        self.codes.get(&code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CodeDef> {
        self.codes.values()
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

#[cfg(test)]
mod tests;
