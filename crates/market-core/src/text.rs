//! The one shape every checked string of the domain shares: a private `String` that only its
//! `parse` can make, readable with `as_str`, and convertible back into a `String`.

/// Defines `TryFrom<String>` (through the type's own `parse`) and `From<T> for String` for a
/// newtype `T(String)`, and `Display` unless `no_display` is given (for personal data).
macro_rules! checked_string {
    ($name:ident) => {
        $crate::text::checked_string!($name, no_display);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
    ($name:ident, no_display) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::Error;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

pub(crate) use checked_string;
