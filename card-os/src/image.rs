//! The applet types a card image carries. There is no loader: INSTALL can only create instances of the modules
//! the image's applet types declare, and the image says which instances exist when the card leaves the factory.
//!
//! An applet type implements [`Install`] (its load file and how an instance is created); an image lists its
//! types in one [`applets!`](crate::applets) invocation, one line per type, which makes the enum the registry
//! stores (no allocator) and its [`AppletSet`].

use apdu_spec::{Aid, StatusWord};

use crate::applet::Applet;

/// An executable load file built into the image, with its modules.
#[derive(Clone, Copy, Debug)]
pub struct LoadFile {
    /// Load file (package) AID.
    pub aid: Aid,
    /// Module (applet class) AIDs.
    pub modules: &'static [Aid],
}

/// An instance present on a new card.
#[derive(Clone, Copy, Debug)]
pub struct FactoryInstance {
    /// Module to instantiate.
    pub module: Aid,
    /// Instance AID.
    pub aid: Aid,
    /// Install parameters (value of C9).
    pub parameters: &'static [u8],
    /// GlobalPlatform privileges.
    pub privileges: [u8; 3],
}

/// An applet type the card can install.
pub trait Install: Applet + Sized {
    /// The load file that carries this type, with its module(s).
    const LOAD_FILE: LoadFile;

    /// Creates an instance of `module` (one of [`Install::LOAD_FILE`]'s) named `aid` from its install
    /// parameters (the value of C9); 6A80 when they are wrong. The runtime calls it at INSTALL, at every
    /// power-on and reset (the instance's fields are volatile state), and where the applet declares so, when it
    /// is deselected from its last channel: the same inputs must always give an instance.
    fn install(module: &Aid, aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord>;
}

/// Every applet type of an image, as one type: made by [`applets!`](crate::applets).
pub trait AppletSet: Applet + Sized {
    /// Load files and modules INSTALL can instantiate.
    const LOAD_FILES: &'static [LoadFile];

    /// Creates an instance of `module`; 6A88 for a module no type carries.
    fn instantiate(module: &Aid, aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord>;
}

/// The applets of one card image.
pub trait Image {
    /// One enum over every applet type ([`applets!`](crate::applets)), so the registry needs no allocator.
    type Applet: AppletSet;

    /// Historical bytes of the ATR (at most 15), naming the card.
    const HISTORICAL_BYTES: &'static [u8];

    /// Instances installed and selectable on a new card.
    const FACTORY_INSTANCES: &'static [FactoryInstance];
}

/// Declares the applet enum of a card image, one line per applet type (each implements [`Install`]): the enum,
/// its [`Applet`] implementation forwarding every entry point, and its [`AppletSet`].
///
/// ```text
/// card_os::applets! {
///     /// One instance of any applet type in the image.
///     #[derive(Debug)]
///     pub enum LinkcardApplet {
///         Loopback(Loopback),
///     }
/// }
/// ```
#[macro_export]
macro_rules! applets {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($variant:ident($type:ty)),+ $(,)? }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                #[doc = concat!("An instance of `", stringify!($type), "`.")]
                $variant($type),
            )+
        }

        // Every entry point of `Applet` is forwarded: a method added to the trait must be added here.
        impl $crate::applet::Applet for $name {
            fn select(&mut self, ctx: &mut $crate::applet::Context<'_>) -> bool {
                match self { $(Self::$variant(a) => a.select(ctx),)+ }
            }
            fn deselect(&mut self, ctx: &mut $crate::applet::Context<'_>) {
                match self { $(Self::$variant(a) => a.deselect(ctx),)+ }
            }
            fn process(
                &mut self,
                ctx: &mut $crate::applet::Context<'_>,
                command: &$crate::apdu_spec::CommandView<'_>,
                reply: &mut $crate::applet::Reply<'_>,
            ) -> ::core::result::Result<(), $crate::apdu_spec::StatusWord> {
                match self { $(Self::$variant(a) => a.process(ctx, command, reply),)+ }
            }
            fn multi_selectable(&self) -> bool {
                match self { $(Self::$variant(a) => a.multi_selectable(),)+ }
            }
            fn extended_length(&self) -> bool {
                match self { $(Self::$variant(a) => a.extended_length(),)+ }
            }
            fn volatile_state(&self) -> $crate::applet::ClearOn {
                match self { $(Self::$variant(a) => a.volatile_state(),)+ }
            }
            fn shared(
                &mut self,
                ctx: &mut $crate::applet::Context<'_>,
                caller: &$crate::apdu_spec::Aid,
                request: &[u8],
                reply: &mut $crate::applet::Reply<'_>,
            ) -> ::core::result::Result<(), $crate::applet::Refused> {
                match self { $(Self::$variant(a) => a.shared(ctx, caller, request, reply),)+ }
            }
        }

        impl $crate::image::AppletSet for $name {
            const LOAD_FILES: &'static [$crate::image::LoadFile] =
                &[$(<$type as $crate::image::Install>::LOAD_FILE),+];

            fn instantiate(
                module: &$crate::apdu_spec::Aid,
                aid: &$crate::apdu_spec::Aid,
                parameters: &[u8],
            ) -> ::core::result::Result<Self, $crate::apdu_spec::StatusWord> {
                $(
                    if <$type as $crate::image::Install>::LOAD_FILE.modules.contains(module) {
                        return <$type as $crate::image::Install>::install(module, aid, parameters)
                            .map(Self::$variant);
                    }
                )+
                Err($crate::apdu_spec::StatusWord::REFERENCED_DATA_NOT_FOUND)
            }
        }
    };
}
