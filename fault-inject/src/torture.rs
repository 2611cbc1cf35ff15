//! torture
