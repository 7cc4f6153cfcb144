/*
 * This code is based on Victron Energy code.
 *
 * An excerpt, unmodified, of velib/inc/velib/ve_regs.h as committed to
 * https://github.com/victronenergy/gui-v2 at 3b9459731f7189c522ec607c580b8917ef577ea6 (2022-06-09, "Copy required
 * files from old gui project. Unmodified."): the comment and #define of each register pvmonit-exporter's table
 * has, of 0xEDAB (DC output control, for the load output) and of 0x106F (the register after the last history
 * day), in the header's order. Origin and licence: README.md in this directory.
 */

/**
 * ProductId# {un8 = Identifier : un16 = Product Id (see xml for meanings), Note
 * that the ve.direct mppt chargers report this field incorrectly as an un16 with
 * the product id in big-endian notation : bits[1] = VictronEnergy Update (VUP)
 * support : bits[7] = reserved, 0x7F = reserved}
 */
#define VE_REG_PRODUCT_ID 0x0100

/**
 * Firmware# {un8 = Identifier : un24 = Firmware Version, 0xFFFFFF = no firmware
 * present, Firmware version 0xHHMMLL (HH=high byte, MM=middle byte, LL=low
 * byte). When HH == 0 : 16-bits version number (compatible with old/current
 * designs), LL: minor number, MM: major number, HH: not used (0), string
 * representation: vMM.LL. When HH != 0 : 24-bits version number, LL: revision
 * number (must be 0xFF for a release, this way the release is preferred over
 * test/release candidates when using less/greater than comparisons), MM: minor
 * number, HH: major number (>=1), string representation: vHH.MM (when LL==0xFF),
 * vHH.MM-beta-LL (when LL!=0xFF).}
 */
#define VE_REG_APP_VER 0x0102

/**
 * Device identification - capabilities1 {bits[1] = Has Load Output, 0 = No, 1 =
 * Yes : bits[1] = Has Rotary Encoder, 0 = No, 1 = Yes : bits[1] = Has History
 * Support, 0 = No, 1 = Yes : bits[1] = Has Batterysafe Mode, 0 = No, 1 = Yes :
 * bits[1] = Has Adaptive Mode, 0 = No, 1 = Yes : bits[1] = Has Manual Equalise,
 * 0 = No, 1 = Yes : bits[1] = Has Auto Equalise, 0 = No, 1 = Yes : bits[1] = Has
 * Storage Mode, 0 = No, 1 = Yes : bits[1] = Has Remote Onoff, 0 = No, 1 = Yes :
 * bits[1] = Has Solar Timer, 0 = No, 1 = Yes : bits[1] = Has Alt Tx Function, 0
 * = No, 1 = Yes : bits[1] = Has User Load Switch, 0 = No, 1 = Yes : bits[1] =
 * Has Load Current, 0 = No, 1 = Yes : bits[1] = Has Panel Current, 0 = No, 1 =
 * Yes : bits[1] = Has Bms Support, 0 = No, 1 = Yes : bits[1] = Has External
 * Control Support, 0 = No, 1 = Yes : bits[1] = Has Remote Sense Support, 0 = No,
 * 1 = Yes : bits[1] = HAS_ALARM_RELAY1, 0 = No, 1 = Yes : bits[1] = Has Alt Rx
 * Function, 0 = No, 1 = Yes : bits[1] = Has Virtual Load Output, 0 = No, 1 = Yes
 * : bits[1] = Has Virtual Relay, 0 = No, 1 = Yes : bits[1] = Has Display, 0 =
 * No, 1 = Yes : bits[1] = Has Low Current Mode, 0 = No, 1 = Yes : bits[1] = Has
 * Night Mode, 0 = No, 1 = Yes : bits[1] = Has Lumeter Support, 0 = No, 1 = Yes :
 * bits[1] = Has Load Aes Mode, 0 = No, 1 = Yes : bits[1] = Has Battery Test, 0 =
 * No, 1 = Yes : bits[1] = Has Paygo Support, 0 = No, 1 = Yes : bits[1] = Has
 * Hibernate Mode, 0 = No, 1 = Yes : bits[1] = Has Ac Out Apparent Power, 0 = No,
 * 1 = Yes : bits[1] = Has Psu Function, 0 = No, 1 = Yes : bits[1] = Needs
 * Battery To Shutdown, 0 = No, 1 = Yes}
 */
#define VE_REG_CAPABILITIES1 0x0140

/**
 * Device Mode {un8 = Mode (see xml for meanings)}
 * @remark error code 0x8300: Invalid, value is out of range / not applicable for
 * the device / system error code.
 * @remark error code 0xC001: VE.Bus specific error, the system cannot be
 * controlled since another panel controls the mode.
 */
#define VE_REG_DEVICE_MODE 0x0200

/**
 * Device State {un8 = State (see xml for meanings), Device state , @see
 * N2kConverterState}
 */
#define VE_REG_DEVICE_STATE 0x0201

/**
 * Device off reason {bits[1] = No Input Power, 0 = No, 1 = Yes, no/low
 * mains/panel/battery power : bits[1] = Hard Power Switch, 0 = No, 1 = Yes,
 * physical switch : bits[1] = Soft Power Switch, 0 = No, 1 = Yes, remote via
 * device_mode and/or push-button : bits[1] = Remote Input, 0 = No, 1 = Yes,
 * remote input connector : bits[1] = Internal Reason, 0 = No, 1 = Yes, internal
 * condition preventing start-up : bits[1] = Paygo, 0 = No, 1 = Yes, need token
 * for operation : bits[1] = Bms, 0 = No, 1 = Yes, allow-to-charge/allow-to-
 * discharge signals from BMS : bits[1] = Engine Sd Detection, 0 = No, 1 = Yes,
 * engine shutdown detected through low input voltage}
 * @deprecated Use VE_REG_DEVICE_OFF_REASON_2 instead.
 * The first byte of that vreg intentionally has the same meaning.
 * VE_REG_DEVICE_OFF_REASON is used by the SmartBatteryProtect and the
 * PhoenixSmartCharger.
 */
#define VE_REG_DEVICE_OFF_REASON 0x0205

/**
 * Device off reason 2 {bits[1] = VE_REG_DEVICE_OFF_2_NO_INPUT_POWER, 0 = No, 1 =
 * Yes, no/low mains/panel/battery power : bits[1] =
 * VE_REG_DEVICE_OFF_2_HARD_POWER_SWITCH, 0 = No, 1 = Yes, physical switch :
 * bits[1] = VE_REG_DEVICE_OFF_2_SOFT_POWER_SWITCH, 0 = No, 1 = Yes, remote via
 * device_mode and/or push-button : bits[1] = VE_REG_DEVICE_OFF_2_REMOTE_INPUT, 0
 * = No, 1 = Yes, remote input connector : bits[1] =
 * VE_REG_DEVICE_OFF_2_INTERNAL_REASON, 0 = No, 1 = Yes, internal condition
 * preventing start-up : bits[1] = VE_REG_DEVICE_OFF_2_PAYGO, 0 = No, 1 = Yes,
 * need token for operation : bits[1] = VE_REG_DEVICE_OFF_2_BMS, 0 = No, 1 = Yes,
 * allow-to-charge/allow-to-discharge signals from BMS : bits[1] =
 * VE_REG_DEVICE_OFF_2_ENGINE_SD_DETECTION, 0 = No, 1 = Yes, engine shutdown
 * detected through low input voltage : bits[1] =
 * VE_REG_DEVICE_OFF_2_ANALYZING_INPUT_VOLTAGE, 0 = No, 1 = Yes, converter off to
 * check input voltage without cable losses : bits[1] =
 * VE_REG_DEVICE_OFF_2_LOW_BATTERY_TEMPERATURE, 0 = No, 1 = Yes, low temperature
 * cut-off : bits[1] = VE_REG_DEVICE_OFF_2_NO_PV_POWER, 0 = No, 1 = Yes, no pv
 * power : bits[1] = VE_REG_DEVICE_OFF_2_LOW_BATTERY, 0 = No, 1 = Yes, battery
 * voltage too low : bits[1] = VE_REG_DEVICE_OFF_2_LOW_MAINS, 0 = No, 1 = Yes, ac
 * input voltage too low : bits[1] = VE_REG_DEVICE_OFF_2_NO_CANSYNC, 0 = No, 1 =
 * Yes, parallel operation: slave inverter out of sync : bits[1] =
 * VE_REG_DEVICE_OFF_2_NOT_ENOUGH_INVERTERS_SYNC_CAN, 0 = No, 1 = Yes, parallel
 * operation: insufficient inverters : bits[1] =
 * VE_REG_DEVICE_OFF_2_ACTIVE_ALARM, 0 = No, 1 = Yes, an active alarm prevents
 * the unit from starting : bits[16] = reserved, 0x000000 = reserved}
 */
#define VE_REG_DEVICE_OFF_REASON_2 0x0207

/**
 * The mid-point voltage of a battery bank {un16 = The mid-point voltage of a
 * battery bank [0.01V], 0xFFFF = not available}
 */
#define VE_REG_BATTERY_MID_POINT_VOLTAGE 0x0382

/**
 * The mid-point deviation relative to the expected {sn16 = The mid-point
 * deviation relative to the expected [0.1%], 0x7FFF = not available}
 */
#define VE_REG_BATTERY_MID_POINT_DEVIATION 0x0383

/** Time to go {un16 = Time to go [1minutes], 0xFFFF = not available} */
#define VE_REG_TTG 0x0FFE

/** State of charge {un16 = SOC [0.01%], 0xFFFF = not available} */
#define VE_REG_SOC 0x0FFF

/**
 * Battery capacity {un16 = Battery capacity [Ah]}
 * @remark Compatible with BMV HEX protocol.
 */
#define VE_REG_BATTERY_CAPACITY 0x1000

/**
 * DC Channel 2 Voltage {sn16 = DC Channel 2 Voltage [0.01V], 0x7FFF = Not
 * Available}
 */
#define VE_REG_DC_CHANNEL2_VOLTAGE 0xED7D

/**
 * DC Channel 1 Current {sn32 = DC Channel 1 Current [0.001A], 0x7FFFFFFF = Not
 * Available}
 */
#define VE_REG_DC_CHANNEL1_CURRENT_MA 0xED8C

/**
 * DC Channel 1 Voltage {sn16 = DC Channel 1 Voltage [0.01V], 0x7FFF = Not
 * Available}
 */
#define VE_REG_DC_CHANNEL1_VOLTAGE 0xED8D

/** DC Channel 1 Power {sn16 = DC Channel 1 Power [1W], 0x7FFF = Not Available} */
#define VE_REG_DC_CHANNEL1_POWER 0xED8E

/**
 * DC Channel 1 Current {sn16 = DC Channel 1 Current [0.1A], 0x7FFF = Not
 * Available}
 */
#define VE_REG_DC_CHANNEL1_CURRENT 0xED8F

/**
 * DC Output Status {un8 = status, 0x00 = Output off, 0x01 = Output on, 0x02 =
 * Output scheduled to be activated, 0x03 = Attempting to activate output}
 */
#define VE_REG_DC_OUTPUT_STATUS 0xEDA8

/**
 * DC Output Control Mode {bits[4] = mode (see xml for meanings) : bits[1] =
 * reserved4 : bits[1] = reserved5 : bits[1] = reserved6 : bits[1] = Ve Reg Dc
 * Output Ctrl Light Flag, 0 = solar timer disabled, 1 = solar timer enabled}
 */
#define VE_REG_DC_OUTPUT_CONTROL 0xEDAB

/** DC Output Current {un16 = DC Output Current [0.1A], 0xFFFF = Not Available} */
#define VE_REG_DC_OUTPUT_CURRENT 0xEDAD

/** DC Input Voltage {un16 = DC Input Voltage [0.01V], 0xFFFF = Not Available} */
#define VE_REG_DC_INPUT_VOLTAGE 0xEDBB

/**
 * DC Input Power (total) {un32 = DC Input Power (total) [0.01W], 0xFFFFFFFF =
 * Not Available}
 */
#define VE_REG_DC_INPUT_POWER 0xEDBC

/** DC Input Current {un16 = DC Input Current [0.1A], 0xFFFF = Not Available} */
#define VE_REG_DC_INPUT_CURRENT 0xEDBD

/**
 * Charger Maximum Power Yesterday
 * Charger specific parameters - charger group maximum power yesterday, unit is
 * 1W
 * @remark This used to be a un16 VREG, and was later changed to un32. The
 * VE.Direct MPPTs still have this implemented as a un16. Both the first and
 * second generation VE.Can MPPTs send this as a un32.
 */
#define VE_REG_CHR_YESTERDAY_PMAX 0xEDD0

/**
 * Charger Yield Yesterday
 * Charger specific parameters - charger group yield yesterday, unit is 0.01kWh
 * @remark This used to be a un16 VREG, and was later changed to un32. The
 * VE.Direct MPPTs still have this implemented as a un16. Both the first and
 * second generation VE.Can MPPTs send this as a un32.
 */
#define VE_REG_CHR_YESTERDAY_YIELD 0xEDD1

/**
 * Charger Maximum Power Today
 * Charger specific parameters - charger group maximum power today, unit is 1W
 * @remark This used to be a un16 VREG, and was later changed to un32. The
 * VE.Direct MPPTs still have this implemented as a un16. Both the first and
 * second generation VE.Can MPPTs send this as a un32.
 */
#define VE_REG_CHR_TODAY_PMAX 0xEDD2

/**
 * Charger Yield Today
 * Charger specific parameters - charger group yield today, unit is 0.01kWh
 * @remark This used to be a un16 VREG, and was later changed to un32. The
 * VE.Direct MPPTs still have this implemented as a un16. Both the first and
 * second generation VE.Can MPPTs send this as a un32.
 */
#define VE_REG_CHR_TODAY_YIELD 0xEDD3

/**
 * Charger Voltage {un16 = Charger Voltage [0.01V], 0xFFFF = Not Available,
 * Charger specific parameters - actual charge voltage                @remark HEX
 * protocol compat. data present in regular NMEA pgn}
 */
#define VE_REG_CHR_VOLTAGE 0xEDD5

/**
 * Charger Current {sn16 = Charger Current [0.1A], 0x7FFF = Not Available,
 * Charger specific parameters - actual charge current                @remark HEX
 * protocol compat. data present in regular NMEA pgn}
 */
#define VE_REG_CHR_CURRENT 0xEDD7

/**
 * Charger Error Code {un8 = Error Code (see xml for meanings)}
 * @remark note: this vreg should also be used by non-charger products (e.g.
 * Battery Protect).
 */
#define VE_REG_CHR_ERROR_CODE 0xEDDA

/** Charger Temperature {sn16 = Charger Temperature [0.01°C]} */
#define VE_REG_CHR_TEMPERATURE 0xEDDB

/**
 * Charger User Yield {un32 = Charger User Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available}
 * @remark use @ref VE_REG_CLEAR_HISTORY to clear
 */
#define VE_REG_CHR_USER_YIELD 0xEDDC

/**
 * Charger System Yield {un32 = Charger System Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available}
 */
#define VE_REG_CHR_SYSTEM_YIELD 0xEDDD

/** Battery Temperature {un16 = Battery Temperature [0.01K], 0xFFFF = Unavailable} */
#define VE_REG_BAT_TEMPERATURE 0xEDEC

/**
 * Battery Voltage Selection {un8 = Battery Voltage Selection [1V] (see xml for
 * meanings), this vreg reports the actual voltage used (relevant for devices
 * with automatic voltage detection), use VE_REG_BAT_VOLTAGE_SETTING to get the
 * user setting ve.direct mppt <v1.08: read = get user battery voltage setting,
 * write = set user battery voltage setting ve.direct mppt >v1.09: read = get
 * detected battery voltage, write = set user battery voltage setting ve.can
 * mppt <v2.00: read = get user battery voltage setting, write = set user
 * battery voltage setting ve.can mppt >v2.01: read = get detected battery
 * voltage, write = set user battery voltage setting note: for models that do not
 * report the detected voltage: the detected voltage can be derived from the
 * battery                parameters (e.g. VE_REG_BAT_ABSORPTION_V)}
 */
#define VE_REG_BAT_VOLTAGE 0xEDEF

/**
 * Battery Maximum Current {un16 = Battery Maximum Current [0.1A], 0xFFFF = Not
 * Available, read: the parameter as it is currently in use (set VE_REG_BAT_TYPE
 * to 0xFF to use and read the user-defined setting).                @remark
 * write: always writes to the user-defined setting in non-volatile memory.}
 */
#define VE_REG_BAT_MAX_CURRENT 0xEDF0

/**
 * Battery Type {un8 = Battery Type, 0x00 = charger disabled, 0xFF = User
 * Defined}
 */
#define VE_REG_BAT_TYPE 0xEDF1

/**
 * Battery Temperature Compensation Level {sn16 = Temperature Compensation
 * [0.01mV/°C], read: the parameter as it is currently in use (set
 * VE_REG_BAT_TYPE to 0xFF to use and read the user-defined setting) write:
 * always writes to the user-defined setting in non-volatile memory.@remark
 * Important for mppt chargers: always set the @ref VE_REG_BAT_VOLTAGE register
 * to the correct system voltage before writing to this register              }
 */
#define VE_REG_BAT_TEMP_COMP 0xEDF2

/**
 * Battery Equalisation Voltage Level {un16 = Battery Equalisation Voltage Level
 * [0.01V], 0xFFFF = Not Available}
 * Set VE_REG_BAT_TYPE to 0xFF to use and read the user-defined setting.
 * write: always writes to the user-defined setting in non-volatile memory.
 * Important for mppt chargers: always set the @ref VE_REG_BAT_VOLTAGE register
 * to the correct system voltage before writing to this register.
 */
#define VE_REG_BAT_EQUAL_V 0xEDF4

/**
 * Battery Float Voltage Level {un16 = Battery Float Voltage Level [0.01V],
 * 0xFFFF = Not Available}
 * Set VE_REG_BAT_TYPE to 0xFF to use and read the user-defined setting.
 * write: always writes to the user-defined setting in non-volatile memory.
 * Important for mppt chargers: always set the @ref VE_REG_BAT_VOLTAGE register
 * to the correct system voltage before writing to this register.
 */
#define VE_REG_BAT_FLOAT_V 0xEDF6

/**
 * Battery Absorption Voltage Level {un16 = Battery Absorption Voltage Level
 * [0.01V], 0xFFFF = Not Available}
 * Set VE_REG_BAT_TYPE to 0xFF to use and read the user-defined setting.
 * write: always writes to the user-defined setting in non-volatile memory.
 * Important for mppt chargers: always set the @ref VE_REG_BAT_VOLTAGE register
 * to the correct system voltage before writing to this register.
 */
#define VE_REG_BAT_ABSORPTION_V 0xEDF7

/** History Cycle Count {un8 = History Cycle Count} */
#define VE_REG_HISTORY_CYCLE_COUNT 0x106F

/**
 * History Total {un8 = Version, 0 = , 1 =  : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un32 = Total
 * yield user [0.01kWh], 0xFFFFFFFF = Not Available : un32 = Total yield system
 * [0.01kWh], 0xFFFFFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Battery voltage max [0.01V], 0xFFFF = Not Available :
 * un8 = Number of available days : , 1 = }
 */
#define VE_REG_HISTORY_TOTAL 0x104F

/**
 * History Day 0 (today) {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF =
 * Not Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 * @remark requesting a day that is not (yet) available results in an error
 * response (ve.can nack or ve.direct flags!=0)
 */
#define VE_REG_HISTORY_DAY00 0x1050

/**
 * History Day -1 (yesterday) {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF
 * = Not Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16
 * = Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY01 0x1051

/**
 * History Day -2 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY02 0x1052

/**
 * History Day -2 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY03 0x1053

/**
 * History Day -4 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY04 0x1054

/**
 * History Day -5 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY05 0x1055

/**
 * History Day -6 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY06 0x1056

/**
 * History Day -7 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY07 0x1057

/**
 * History Day -8 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY08 0x1058

/**
 * History Day -9 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY09 0x1059

/**
 * History Day -10 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY10 0x105A

/**
 * History Day -11 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY11 0x105B

/**
 * History Day -12 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY12 0x105C

/**
 * History Day -13 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY13 0x105D

/**
 * History Day -14 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY14 0x105E

/**
 * History Day -15 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY15 0x105F

/**
 * History Day -16 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY16 0x1060

/**
 * History Day -17 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY17 0x1061

/**
 * History Day -18 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY18 0x1062

/**
 * History Day -19 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY19 0x1063

/**
 * History Day -20 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY20 0x1064

/**
 * History Day -21 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY21 0x1065

/**
 * History Day -22 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY22 0x1066

/**
 * History Day -22 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY23 0x1067

/**
 * History Day -24 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY24 0x1068

/**
 * History Day -25 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY25 0x1069

/**
 * History Day -26 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY26 0x106A

/**
 * History Day -27 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY27 0x106B

/**
 * History Day -28 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY28 0x106C

/**
 * History Day -29 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY29 0x106D

/**
 * History Day -30 {un8 = Version : un32 = Yield [0.01kWh], 0xFFFFFFFF = Not
 * Available : un32 = Consumed [0.01kWh], 0xFFFFFFFF = Not Available : un16 =
 * Battery voltage max [0.01V], 0xFFFF = Not Available : un16 = Battery voltage
 * min [0.01V], 0xFFFF = Not Available : un8 = Error database id, 0 =
 * ERROR_DB_CHARGERS, 1 = ERROR_DB_DEVICES, 0xFF = Not available : un8 = Error 0
 * (see xml for meanings) : un8 = Error 1 (see xml for meanings) : un8 = Error 2
 * (see xml for meanings) : un8 = Error 3 (see xml for meanings) : un16 = Time
 * Bulk [1minutes], 0xFFFF = Not Available : un16 = Time Absorption [1minutes],
 * 0xFFFF = Not Available : un16 = Time Float [1minutes], 0xFFFF = Not Available
 * : un32 = Max power [1W], 0xFFFFFFFF = Not Available : un16 = Battery current
 * max [0.1A], 0xFFFF = Not Available : un16 = Panel voc max [0.01V], 0xFFFF =
 * Not Available : un16 = Day sequence number}
 */
#define VE_REG_HISTORY_DAY30 0x106E

/**
 * Link RTC Time (internal) {un16 = Link RTC Time [1minutes], 0xFFFF = Not
 * Available, valid range 0..1440 (starting at midnight)}
 */
#define VE_REG_LINK_RTC_TIME 0x2031

/**
 * Serial number {stringZeroEnded[32] = Serial : un8 = padding, 0 = 0x00 padding,
 * 0xFF = 0xFF padding}
 */
#define VE_REG_SERIAL_NUMBER 0x010A

/** Model name {stringZeroEnded[64] = Model : un8 = padding, 0 = zeropadding} */
#define VE_REG_MODEL_NAME 0x010B
