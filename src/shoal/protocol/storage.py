"""The Foolscap storage protocol of Tahoe-LAFS 1.20: remote names, methods, constraints.

These declarations are the protocol: a Tahoe client calls methods by these
names on an object whose remote interface is named
"RIStorageServer.tahoe.allmydata.com", and Foolscap enforces the argument
constraints on the receiving side before any of shoal's code runs.
"""

# Foolscap reads these method signatures as schemas: no self, constraints as
# default values.
# mypy: disable-error-code="misc"
# ruff: noqa: B008, N805

from foolscap.api import (
    Any,
    ChoiceOf,
    DictOf,
    IntegerConstraint,
    ListOf,
    Referenceable,
    RemoteInterface,
    SetOf,
    StringConstraint,
    TupleOf,
)

MAX_BUCKETS = 256  # zfec's limit: at most 256 shares per file
HASH_SIZE = 32

Hash = StringConstraint(maxLength=HASH_SIZE, minLength=HASH_SIZE)
StorageIndex = StringConstraint(16)
ShareData = StringConstraint(None)
Offset = IntegerConstraint(8)  # 8 bytes: up to 16 EiB
ReadSize = int  # Foolscap's default int constraint
WriteEnablerSecret = Hash
LeaseRenewSecret = Hash
LeaseCancelSecret = Hash

# (offset, length, operator, specimen); operator must be b"eq".
TestVector = ListOf(TupleOf(Offset, ReadSize, bytes, bytes))
DataVector = ListOf(TupleOf(Offset, ShareData))  # (offset, data)
TestAndWriteVectorsForShares = DictOf(int, TupleOf(TestVector, DataVector, ChoiceOf(None, Offset)))
ReadVector = ListOf(TupleOf(Offset, ReadSize))
ReadData = ListOf(ShareData)


class RIBucketWriter(RemoteInterface):
    # No __remote_name__: as in Tahoe, the name is the class name.

    def write(offset=Offset, data=ShareData):
        return None

    def close():
        return None

    def abort():
        return None


class RIBucketReader(RemoteInterface):
    # No __remote_name__: as in Tahoe, the name is the class name.

    def read(offset=Offset, length=ReadSize):
        return ShareData

    def advise_corrupt_share(reason=bytes):
        return None


class RIStorageServer(RemoteInterface):
    __remote_name__ = "RIStorageServer.tahoe.allmydata.com"

    def get_version():
        return DictOf(bytes, Any())

    def allocate_buckets(
        storage_index=StorageIndex,
        renew_secret=LeaseRenewSecret,
        cancel_secret=LeaseCancelSecret,
        sharenums=SetOf(int, maxLength=MAX_BUCKETS),
        allocated_size=Offset,
        canary=Referenceable,
    ):
        return TupleOf(SetOf(int, maxLength=MAX_BUCKETS), DictOf(int, RIBucketWriter, maxKeys=MAX_BUCKETS))

    def add_lease(storage_index=StorageIndex, renew_secret=LeaseRenewSecret, cancel_secret=LeaseCancelSecret):
        return Any()

    def get_buckets(storage_index=StorageIndex):
        return DictOf(int, RIBucketReader, maxKeys=MAX_BUCKETS)

    def slot_readv(storage_index=StorageIndex, shares=ListOf(int), readv=ReadVector):
        return DictOf(int, ReadData)

    def slot_testv_and_readv_and_writev(
        storage_index=StorageIndex,
        secrets=TupleOf(WriteEnablerSecret, LeaseRenewSecret, LeaseCancelSecret),
        tw_vectors=TestAndWriteVectorsForShares,
        r_vector=ReadVector,
    ):
        return TupleOf(bool, DictOf(int, ReadData))

    def advise_corrupt_share(share_type=bytes, storage_index=StorageIndex, shnum=int, reason=bytes):
        return None
