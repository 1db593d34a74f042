//! Which generator emits each service: ttrpc glue for shim packages, tonic for the rest.

use std::cell::RefCell;
use std::rc::Rc;

use prost_build::{Service, ServiceGenerator};

use crate::{Error, grpc, spec, ttrpc};

/// The service generator handed to prost.
pub struct Services {
    tonic: Box<dyn ServiceGenerator>,
    errors: Rc<RefCell<Vec<Error>>>,
}

impl Services {
    /// A generator that records failures in `errors` (prost's interface cannot return them).
    pub fn new(errors: Rc<RefCell<Vec<Error>>>) -> Self {
        let tonic = tonic_prost_build::configure()
            .build_transport(false)
            .emit_rerun_if_changed(false)
            .service_generator();
        Services { tonic, errors }
    }
}

impl ServiceGenerator for Services {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let result = if spec::is_ttrpc(&service.package) {
            ttrpc::generate(&service)
        } else {
            grpc::generate(self.tonic.as_mut(), service)
        };
        match result {
            Ok(tokens) => buf.push_str(&tokens.to_string()),
            Err(e) => self.errors.borrow_mut().push(e),
        }
    }

    fn finalize(&mut self, buf: &mut String) {
        self.tonic.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        if !spec::is_ttrpc(package) {
            self.tonic.finalize_package(package, buf);
        }
    }
}
