//! The module takes the function's visibility: private and `pub(crate)` tasks in a nested
//! module, usable where the function is.
mod jobs {
    use toosimple_core::task;

    #[task]
    fn private_job(n: u32) -> u32 {
        n
    }

    #[task]
    pub(crate) fn crate_job(n: u32) -> u32 {
        n
    }

    #[task]
    pub(super) fn super_job() {}

    #[allow(dead_code)]
    pub(crate) fn enqueue_private() -> Result<(), toosimple_core::Error> {
        private_job::queue(1)?;
        Ok(())
    }

    pub(crate) mod deeper {
        use toosimple_core::task;

        #[task]
        pub(in crate::jobs) fn deep_job() {}
    }

    #[allow(dead_code)]
    fn enqueue_deep() -> Result<(), toosimple_core::Error> {
        deeper::deep_job::queue()?;
        Ok(())
    }
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    jobs::crate_job::queue(1)?;
    jobs::super_job::queue()?;
    jobs::enqueue_private()?;
    Ok(())
}

fn main() {
    assert_eq!(jobs::crate_job(3), 3);
    assert_eq!(jobs::crate_job::NAME, "crate_job");
}
